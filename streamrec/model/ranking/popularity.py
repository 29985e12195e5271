"""Item popularity: all-time counts and time-decayed counts, in event time."""

from __future__ import annotations

import heapq
import itertools
import math
import operator
from collections.abc import Iterable, Sequence

import numpy as np

from streamrec.model.base import DoubleArray

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
        get = self._pos.get
        pos = np.fromiter((get(i, -1) for i in items), dtype=np.int64, count=len(items))
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


def _take(table: dict[str, float], key: str, w: float) -> None:
    """Subtract `w` from `table[key]`; an entry left with (about) nothing goes."""
    left = table.get(key, 0.0) - w
    if left > 1e-9:
        table[key] = left
    else:
        table.pop(key, None)


class CoOccurrence:
    """Item-to-item counts: how often one item followed another in the same user's history.

    When a user takes item `j`, each of their `window` previous items `i` (most recent
    first, at distance `d`) adds `decay ** d` to `(i -> j)` and `backward * decay ** d`
    to `(j -> i)`. Scoring a candidate sums, over the user's recent items, the pair
    weight normalized by both items' counts (`w / sqrt(n_i * n_c)`, a cosine of the
    two items' user-sequences), so a blockbuster does not neighbour everything.
    Rows keep at most `max_neighbors` entries, pruned to the strongest, so memory grows
    with the catalog, not with the stream.

    Parameters
    ----------
    window
        Previous items of the user that a new item is paired with.
    decay
        Weight kept per step of distance between the two items in the user's history.
    backward
        Weight of the reverse direction (1.0: symmetric).
    max_neighbors
        Entries kept per item.

    Examples
    --------
    >>> co = CoOccurrence(window=2)
    >>> for history in (["tent", "stove", "lamp"], ["tent", "stove"], ["rod", "reel"]):
    ...     for n, item in enumerate(history):
    ...         co.learn_one(list(reversed(history[:n])), item)
    >>> [item for item, _ in co.neighbors(["tent"], 2)]
    ['stove', 'lamp']
    >>> co.scores(["tent"], ["stove", "reel"]).round(3).tolist()
    [1.0, 0.0]
    """

    def __init__(
        self, window: int = 10, decay: float = 0.8, backward: float = 1.0, max_neighbors: int = 1000
    ) -> None:
        self.window = window
        self.decay = decay
        self.backward = backward
        self.max_neighbors = max_neighbors
        self._rows: dict[str, dict[str, float]] = {}
        self._counts: dict[str, float] = {}
        #: Per row, its strongest entries as of some updates ago, and the updates since.
        self._tops: dict[str, tuple[list[str], list[float]]] = {}
        self._stale: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __getstate__(self) -> dict[str, object]:
        # The sorted rows are a cache: rebuilt as asked for, not checkpointed.
        return {k: v for k, v in self.__dict__.items() if k not in ("_tops", "_stale")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._tops = {}
        self._stale = {}

    def learn_one(self, recent: Sequence[str], item: str, weight: float = 1.0) -> None:
        """Pair `item` with the user's previous items `recent` (most recent first)."""
        rows = self._rows
        self._counts[item] = self._counts.get(item, 0.0) + weight
        w = weight
        for previous in recent[: self.window]:
            if previous != item:
                self._add(rows, previous, item, w)
                if self.backward:
                    self._add(rows, item, previous, w * self.backward)
            w *= self.decay

    def unlearn_one(self, recent: Sequence[str], item: str, weight: float = 1.0) -> None:
        """Take back a `learn_one` with the same arguments (e.g. a forgotten user's): what it
        added comes off, down to nothing; a pair pruned since has nothing left to take.

        >>> co = CoOccurrence()
        >>> co.learn_one(["tent"], "stove"); co.unlearn_one(["tent"], "stove"); co._rows, co._counts
        ({}, {})
        """
        _take(self._counts, item, weight)
        w = weight
        for previous in recent[: self.window]:
            if previous != item:
                self._take_pair(previous, item, w)
                if self.backward:
                    self._take_pair(item, previous, w * self.backward)
            w *= self.decay

    def _take_pair(self, a: str, b: str, w: float) -> None:
        row = self._rows.get(a)
        if row is not None:
            _take(row, b, w)
            self._tops.pop(a, None)  # a pair taken back never comes back as a candidate
            if not row:
                del self._rows[a]

    def _add(self, rows: dict[str, dict[str, float]], a: str, b: str, w: float) -> None:
        row = rows.get(a)
        if row is None:
            row = rows[a] = {}
        row[b] = row.get(b, 0.0) + w
        self._stale[a] = self._stale.get(a, 0) + 1
        if len(row) > 2 * self.max_neighbors:
            keep = sorted(row.items(), key=lambda kv: -kv[1])[: self.max_neighbors]
            rows[a] = dict(keep)
            self._tops.pop(a, None)

    def count(self, item: str) -> float:
        return self._counts.get(item, 0.0)

    def scores(self, recent: Sequence[str], items: Sequence[str]) -> DoubleArray:
        """How strongly each of `items` follows the user's `recent` items (most recent first)."""
        pairs = self.contributions(recent, items)
        return pairs.sum(axis=0) if len(pairs) else np.zeros(len(items))

    def contributions(self, recent: Sequence[str], items: Sequence[str]) -> DoubleArray:
        """`scores` split by recent item: one row per item of `recent[:window]`."""
        recent = recent[: self.window]
        out = np.zeros((len(recent), len(items)), dtype=np.float64)
        if not items:
            return out
        counts = self._counts
        position = {item: j for j, item in enumerate(items)}
        zeros = itertools.repeat(0.0)
        n = len(items)
        w = 1.0
        for r, previous in enumerate(recent):
            row = self._rows.get(previous)
            if row:
                # Walk the shorter of the row and the candidate list.
                if len(row) < n:
                    for other, value in row.items():
                        j = position.get(other)
                        if j is not None:
                            out[r, j] = value
                else:
                    out[r] = np.fromiter(map(row.get, items, zeros), dtype=np.float64, count=n)
                out[r] *= w / math.sqrt(max(counts.get(previous, 1.0), 1.0))
            w *= self.decay
        norm = np.fromiter(map(counts.get, items, zeros), dtype=np.float64, count=n)
        out /= np.sqrt(np.maximum(norm, 1.0))
        return out

    def neighbors(self, recent: Sequence[str], n: int, depth: int = 3) -> list[tuple[str, float]]:
        """Candidates: the items that most often followed each of the user's `depth` latest items.

        Strongest raw pair counts per recent item, merged; `contributions` scores them. Each
        row's strongest entries are kept sorted and sorted again once the row has taken an
        eighth of its length in updates since (or when more are asked for): candidates may
        trail the counts by a few updates, while a row is not sorted for every user.
        """
        out: dict[str, float] = {}
        w = 1.0
        for previous in recent[:depth]:
            keys, values = self._strongest(previous, n)
            for key, value in zip(keys, values, strict=False):
                out[key] = out.get(key, 0.0) + w * value
            w *= self.decay
        return heapq.nlargest(n, out.items(), key=operator.itemgetter(1))

    def _strongest(self, item: str, n: int) -> tuple[list[str], list[float]]:
        row = self._rows.get(item)
        if not row:
            return [], []
        cached = self._tops.get(item)
        stale = self._stale.get(item, 0)
        if (
            cached is not None
            and stale <= len(row) // 8
            and (len(cached[0]) >= n or len(cached[0]) == len(row))
        ):
            return cached[0][:n], cached[1][:n]
        # The row's n strongest, strongest first, ties in the row's order (as a stable sort
        # gives them): a sort in numpy rather than a heap of Python tuples.
        values = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        keys = list(row)
        order = np.argsort(-values, kind="stable")[:n].tolist()
        top = ([keys[j] for j in order], [float(values[j]) for j in order])
        self._tops[item] = top
        self._stale[item] = 0
        return top

    def forget(self, item: str) -> None:
        self._rows.pop(item, None)
        self._counts.pop(item, None)
        self._tops.pop(item, None)
        self._stale.pop(item, None)
