"""Item popularity: all-time counts and time-decayed counts, in event time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Popularity"]

FloatArray = npt.NDArray[np.float64]


class Popularity:
    """Weighted interaction counts per item, with an exponentially decayed twin.

    Decayed counts are kept relative to a reference time, so an update costs O(1)
    and the ranking never needs a pass over all items: an event at time `t` adds
    `w * 2 ** ((t - t_ref) / half_life)`, and all values are rescaled when the
    exponent grows large.

    Parameters
    ----------
    half_life_s
        Half-life of the decayed counts, in seconds of event time.

    Examples
    --------
    >>> pop = Popularity(half_life_s=10.0)
    >>> pop.learn_one("old", ts=0.0, weight=3.0)
    >>> pop.learn_one("new", ts=100.0)
    >>> [item for item, _ in pop.top(2, decayed=False)]
    ['old', 'new']
    >>> [item for item, _ in pop.top(2, decayed=True)]
    ['new', 'old']
    """

    _RESCALE_EXPONENT = 60.0

    def __init__(self, half_life_s: float = 7 * 86_400.0) -> None:
        self.half_life_s = half_life_s
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._counts = np.zeros(64, dtype=np.float64)
        self._decayed = np.zeros(64, dtype=np.float64)
        self._t_ref: float | None = None
        self.t_last = 0.0
        self.total = 0.0

    def __len__(self) -> int:
        return len(self._ids)

    def _slot(self, item: str) -> int:
        pos = self._pos.get(item)
        if pos is None:
            pos = len(self._ids)
            if pos == len(self._counts):
                self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
                self._decayed = np.concatenate([self._decayed, np.zeros_like(self._decayed)])
            self._ids.append(item)
            self._pos[item] = pos
        return pos

    def learn_one(self, item: str, ts: float, weight: float = 1.0) -> None:
        pos = self._slot(item)
        if self._t_ref is None:
            self._t_ref = ts
        exponent = (ts - self._t_ref) / self.half_life_s
        if exponent > self._RESCALE_EXPONENT:
            self._decayed *= 2.0 ** -exponent
            self._t_ref = ts
            exponent = 0.0
        self._counts[pos] += weight
        # Events far older than the reference add (almost) nothing, as they should.
        self._decayed[pos] += weight * 2.0 ** max(exponent, -self._RESCALE_EXPONENT)
        self.t_last = max(self.t_last, ts)
        self.total += weight

    def add(self, item: str) -> None:
        """Make an item known (e.g. from the catalog) without counting an interaction."""
        self._slot(item)

    def unlearn(self, item: str, weight: float, ts: float) -> None:
        """Take back an interaction (e.g. a forgotten user's)."""
        pos = self._pos.get(item)
        if pos is None or self._t_ref is None:
            return
        self._counts[pos] = max(0.0, self._counts[pos] - weight)
        exponent = (ts - self._t_ref) / self.half_life_s
        self._decayed[pos] = max(0.0, self._decayed[pos] - weight * 2.0 ** max(exponent, -60.0))
        self.total = max(0.0, self.total - weight)

    def count(self, item: str) -> float:
        pos = self._pos.get(item)
        return 0.0 if pos is None else float(self._counts[pos])

    def counts(self, items: Sequence[str]) -> FloatArray:
        return np.array([self.count(i) for i in items], dtype=np.float64)

    def scores(self, items: Sequence[str], decayed: bool = True) -> FloatArray:
        """Popularity on a log scale, comparable across items at one moment."""
        values = self._decayed if decayed else self._counts
        out = np.zeros(len(items), dtype=np.float64)
        for j, item in enumerate(items):
            pos = self._pos.get(item)
            if pos is not None:
                out[j] = values[pos]
        if decayed and self._t_ref is not None:
            out *= 2.0 ** -((self.t_last - self._t_ref) / self.half_life_s)
        return np.log1p(out)

    def top(
        self, k: int, exclude: Iterable[str] = (), decayed: bool = True
    ) -> list[tuple[str, float]]:
        """The `k` most popular items not in `exclude`, with their log-scale score."""
        n = len(self._ids)
        if n == 0 or k <= 0:
            return []
        values = (self._decayed if decayed else self._counts)[:n]
        excluded = [self._pos[i] for i in exclude if i in self._pos]
        want = min(n, k + len(excluded))
        top = np.argpartition(-values, want - 1)[:want] if want < n else np.arange(n)
        top = top[np.argsort(-values[top], kind="stable")]
        skip = set(excluded)
        scale = 1.0
        if decayed and self._t_ref is not None:
            scale = 2.0 ** -((self.t_last - self._t_ref) / self.half_life_s)
        out = []
        for pos in top:
            if pos in skip:
                continue
            out.append((self._ids[pos], math.log1p(float(values[pos]) * scale)))
            if len(out) == k:
                break
        return out
