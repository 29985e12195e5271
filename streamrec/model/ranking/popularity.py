"""Item popularity: all-time counts and time-decayed counts, in event time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np

from streamrec.model.base import DoubleArray

# Checkpoints written before item-to-item counts had a module of their own name the class here.
from streamrec.model.ranking.cooccurrence import CoOccurrence

__all__ = ["CoOccurrence", "Popularity"]


class Popularity:
    """How often each item was taken, and how well liked: weighted counts with a decayed twin.

    `takes` counts every interaction, a panned one too; the weighted counts add each
    interaction's weight (0 for a pan: a pan is no like).

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
    >>> pop.learn_one("new", ts=101.0, weight=0.0)  # a pan: taken, not liked
    >>> pop.takes("new"), pop.count("new")
    (2, 1.0)
    """

    _RESCALE_EXPONENT = 60.0

    def __init__(self, half_life_s: float = 7 * 86_400.0) -> None:
        self.half_life_s = half_life_s
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._counts = np.zeros(64, dtype=np.float64)
        self._decayed = np.zeros(64, dtype=np.float64)
        self._takes = np.zeros(64, dtype=np.int64)
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
                self._takes = np.concatenate([self._takes, np.zeros_like(self._takes)])
            self._ids.append(item)
            self._pos[item] = pos
        return pos

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if "_takes" not in state:  # pickled before takes were counted here
            self._takes = np.zeros(len(self._counts), dtype=np.int64)

    def learn_one(self, item: str, ts: float, weight: float = 1.0) -> None:
        """Count a take of `item` at `ts`; with `weight` > 0, a like of that weight too."""
        pos = self._slot(item)
        self._takes[pos] += 1
        if weight <= 0:
            return
        if self._t_ref is None:
            self._t_ref = ts
        exponent = (ts - self._t_ref) / self.half_life_s
        if exponent > self._RESCALE_EXPONENT:
            self._decayed *= 2.0**-exponent
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
        if pos is None:
            return
        self._takes[pos] = max(0, self._takes[pos] - 1)
        if weight <= 0 or self._t_ref is None:
            return
        self._counts[pos] = max(0.0, self._counts[pos] - weight)
        exponent = (ts - self._t_ref) / self.half_life_s
        self._decayed[pos] = max(0.0, self._decayed[pos] - weight * 2.0 ** max(exponent, -60.0))
        self.total = max(0.0, self.total - weight)

    def takes(self, item: str) -> int:
        """Interactions with `item`, liked or not."""
        pos = self._pos.get(item)
        return 0 if pos is None else int(self._takes[pos])

    def restore_takes(self, takes: dict[str, int]) -> None:
        """Take counts kept apart (checkpoints written before they were kept here)."""
        for item, n in takes.items():
            self._takes[self._slot(item)] = n

    def count(self, item: str) -> float:
        pos = self._pos.get(item)
        return 0.0 if pos is None else float(self._counts[pos])

    def _lookup(self, values: DoubleArray, items: Sequence[str]) -> DoubleArray:
        pos = np.fromiter(map(self._pos.get, items, repeat(-1)), dtype=np.int64, count=len(items))
        return np.where(pos >= 0, values[pos], 0.0)

    def counts(self, items: Sequence[str]) -> DoubleArray:
        return self._lookup(self._counts, items)

    def scores(self, items: Sequence[str], decayed: bool = True) -> DoubleArray:
        """Popularity on a log scale, comparable across items at one moment."""
        out = self._lookup(self._decayed if decayed else self._counts, items)
        if decayed and self._t_ref is not None:
            out *= 2.0 ** -((self.t_last - self._t_ref) / self.half_life_s)
        return np.log1p(out)

    def top(
        self, k: int, exclude: Iterable[str] = (), decayed: bool = True, hidden: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        """The `k` most popular items in neither `exclude` nor `hidden`, with their log-scale score."""
        return self.top_many(k, [set(exclude)], decayed, hidden)[0]

    def top_many(
        self, k: int, excludes: Sequence[set[str]], decayed: bool = True, hidden: Iterable[str] = ()
    ) -> list[list[tuple[str, float]]]:
        """`top` for many users at once (`excludes`: each one's): the items are ordered once.

        >>> pop = Popularity()
        >>> for item, n in (("a", 3), ("b", 2), ("c", 1)): pop.learn_one(item, ts=0.0, weight=n)
        >>> [[i for i, _ in top] for top in pop.top_many(2, [set(), {"a"}], hidden={"b"})]
        [['a', 'c'], ['c']]
        """
        n = len(self._ids)
        if n == 0 or k <= 0:
            return [[] for _ in excludes]
        values = (self._decayed if decayed else self._counts)[:n]
        skip = {self._pos[i] for i in hidden if i in self._pos}
        # Enough of the order for the user who excludes the most (their excluded items may all
        # be among the most popular).
        want = min(n, k + len(skip) + max((len(e) for e in excludes), default=0))
        top = np.argpartition(-values, want - 1)[:want] if want < n else np.arange(n)
        top = top[np.argsort(-values[top], kind="stable")]
        scale = 1.0
        if decayed and self._t_ref is not None:
            scale = 2.0 ** -((self.t_last - self._t_ref) / self.half_life_s)
        ordered = [(self._ids[pos], math.log1p(float(values[pos]) * scale)) for pos in top.tolist()]
        if skip:
            ordered = [(item, score) for (item, score), pos in zip(ordered, top.tolist(), strict=True)
                       if pos not in skip]  # fmt: skip
        out = []
        for exclude in excludes:
            mine = []
            for item, score in ordered:
                if item not in exclude:
                    mine.append((item, score))
                    if len(mine) == k:
                        break
            out.append(mine)
        return out
