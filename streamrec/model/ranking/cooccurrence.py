"""Item-to-item counts: how often one item followed another in the same user's history.

Items have integer rows (`slot`), and each item's row of pair counts is two arrays (the other
items' rows, the counts) with a dict from item to place for updates. Scoring many candidates
against a user's latest items is then array work: a row is spread into a dense scratch vector
and the candidates' rows read off it, instead of one dict lookup per (recent item, candidate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.base import DoubleArray

__all__ = ["CoOccurrence"]

#: Below this a count taken back is gone (floating-point leftovers of a subtraction).
_NOTHING = 1e-9
_NO_COLS = np.zeros(0, dtype=np.int32)
_NO_VALS = np.zeros(0, dtype=np.float64)


class _Row:
    """One item's pair counts: `cols[:n]` the other items' slots, `vals[:n]` the counts, `at`
    each other item's place in them. Entries keep the order they came in, except that one taken
    back to nothing is replaced by the last."""

    __slots__ = ("at", "cols", "vals")

    def __init__(self, capacity: int = 4) -> None:
        self.at: dict[str, int] = {}
        self.cols = np.zeros(capacity, dtype=np.int32)
        self.vals = np.zeros(capacity, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.at)

    def __contains__(self, key: str) -> bool:
        return key in self.at

    def add(self, key: str, col: int, w: float) -> None:
        place = self.at.get(key)
        if place is not None:
            self.vals[place] += w
            return
        place = len(self.at)
        if place == len(self.cols):
            self.cols = np.concatenate([self.cols, np.zeros_like(self.cols)])
            self.vals = np.concatenate([self.vals, np.zeros_like(self.vals)])
        self.at[key] = place
        self.cols[place] = col
        self.vals[place] = w

    def take(self, key: str, w: float, names: Sequence[str]) -> None:
        """Subtract `w` from `key`'s count; a count left with (about) nothing goes, the last
        entry taking its place."""
        place = self.at.get(key)
        if place is None:
            return
        left = float(self.vals[place]) - w
        if left > _NOTHING:
            self.vals[place] = left
            return
        last = len(self.at) - 1
        del self.at[key]
        if place != last:
            self.at[names[int(self.cols[last])]] = place
            self.cols[place], self.vals[place] = self.cols[last], self.vals[last]
        self.cols[last], self.vals[last] = 0, 0.0

    def keep(self, order: Sequence[int], names: Sequence[str]) -> None:
        """Keep only the entries at `order`, in that order."""
        n = len(order)
        cols, vals = self.cols[order], self.vals[order]
        self.cols = np.zeros(max(8, 2 * n), dtype=np.int32)
        self.vals = np.zeros(max(8, 2 * n), dtype=np.float64)
        self.cols[:n], self.vals[:n] = cols, vals
        self.at = {names[c]: j for j, c in enumerate(cols.tolist())}

    def as_dict(self, names: Sequence[str]) -> dict[str, float]:
        """The entries in the row's order."""
        n = len(self.at)
        return {names[c]: v for c, v in zip(self.cols[:n].tolist(), self.vals[:n].tolist(), strict=True)}


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
        self._clear()

    def _clear(self) -> None:
        self._rows: dict[str, _Row] = {}
        #: Each item's integer row, and the item of each row.
        self._slot: dict[str, int] = {}
        self._names: list[str] = []
        #: Each item's count (how often it was taken), by row.
        self._counts = np.zeros(64, dtype=np.float64)
        #: Zeros, one per item: where a row is spread to read candidates off it.
        self._scratch = np.zeros(64, dtype=np.float64)
        #: Per row, its strongest entries as of some updates ago, and the updates since.
        self._tops: dict[str, tuple[npt.NDArray[np.int32], DoubleArray]] = {}
        self._stale: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __getstate__(self) -> dict[str, object]:
        # Rows as arrays of other items' slots and counts; the places and the sorted rows are
        # rebuilt on load.
        rows = {}
        for item, row in self._rows.items():
            n = len(row)
            rows[item] = (row.cols[:n].copy(), row.vals[:n].copy())
        return {
            "window": self.window,
            "decay": self.decay,
            "backward": self.backward,
            "max_neighbors": self.max_neighbors,
            "names": list(self._names),
            "counts": self._counts[: len(self._names)].copy(),
            "rows": rows,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("window", "decay", "backward", "max_neighbors"):
            setattr(self, name, state[name])
        self._clear()
        if "names" not in state:  # checkpoints that kept rows as dicts of dicts
            for item, n in state["_counts"].items():
                col = self.slot(item)  # may grow the counts
                self._counts[col] = n
            for item, entries in state["_rows"].items():
                row = self._rows[item] = _Row(max(8, len(entries)))
                for other, value in entries.items():
                    row.add(other, self.slot(other), value)
            return
        for name in state["names"]:
            self.slot(name)
        self._counts[: len(self._names)] = state["counts"]
        names = self._names
        for item, (cols, vals) in state["rows"].items():
            row = self._rows[item] = _Row(max(8, len(cols)))
            row.cols[: len(cols)], row.vals[: len(vals)] = cols, vals
            row.at = {names[c]: j for j, c in enumerate(cols.tolist())}

    def slot(self, item: str) -> int:
        """`item`'s integer row (a new one for an item not seen before)."""
        place = self._slot.get(item)
        if place is None:
            place = self._slot[item] = len(self._names)
            self._names.append(item)
            if place == len(self._counts):
                self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
                self._scratch = np.zeros(len(self._counts), dtype=np.float64)
        return place

    def learn_one(self, recent: Sequence[str], item: str, weight: float = 1.0) -> None:
        """Pair `item` with the user's previous items `recent` (most recent first)."""
        col = self.slot(item)
        self._counts[col] += weight
        w = weight
        for previous in recent[: self.window]:
            if previous != item:
                self._add(previous, item, col, w)
                if self.backward:
                    self._add(item, previous, self.slot(previous), w * self.backward)
            w *= self.decay

    def unlearn_one(self, recent: Sequence[str], item: str, weight: float = 1.0) -> None:
        """Take back a `learn_one` with the same arguments (e.g. a forgotten user's): what it
        added comes off, down to nothing; a pair pruned since has nothing left to take.

        >>> co = CoOccurrence()
        >>> co.learn_one(["tent"], "stove"); co.unlearn_one(["tent"], "stove")
        >>> len(co), co.count("stove"), co.count("tent")
        (0, 0.0, 0.0)
        """
        col = self._slot.get(item)
        if col is not None:
            left = float(self._counts[col]) - weight
            self._counts[col] = left if left > _NOTHING else 0.0
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
            row.take(b, w, self._names)
            self._tops.pop(a, None)  # a pair taken back never comes back as a candidate
            if not len(row):
                del self._rows[a]

    def _add(self, a: str, b: str, col: int, w: float) -> None:
        row = self._rows.get(a)
        if row is None:
            row = self._rows[a] = _Row()
        row.add(b, col, w)
        self._stale[a] = self._stale.get(a, 0) + 1
        if len(row) > 2 * self.max_neighbors:
            # The strongest, ties in the row's order.
            order = np.argsort(-row.vals[: len(row)], kind="stable")[: self.max_neighbors]
            row.keep(order.tolist(), self._names)
            self._tops.pop(a, None)

    def count(self, item: str) -> float:
        col = self._slot.get(item)
        return 0.0 if col is None else float(self._counts[col])

    def row(self, item: str) -> dict[str, float]:
        """`item`'s pair counts, by the item that followed it (empty: none)."""
        row = self._rows.get(item)
        return row.as_dict(self._names) if row is not None else {}

    def entries(self) -> int:
        """Pair counts held, over all rows."""
        return sum(len(row) for row in self._rows.values())

    def scores(self, recent: Sequence[str], items: Sequence[str]) -> DoubleArray:
        """How strongly each of `items` follows the user's `recent` items (most recent first)."""
        pairs = self.contributions(recent, items)
        return pairs.sum(axis=0) if len(pairs) else np.zeros(len(items))

    def slots(self, items: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each item's integer row (-1: an item never taken), for `contributions`."""
        return np.fromiter(map(self._slot.get, items, repeat(-1)), dtype=np.int64, count=len(items))

    def contributions(
        self, recent: Sequence[str], items: Sequence[str], cols: npt.NDArray[np.int64] | None = None
    ) -> DoubleArray:
        """`scores` split by recent item: one row per item of `recent[:window]`. `cols`: the
        items' `slots`, where the caller looked them up for many users at once."""
        recent = recent[: self.window]
        out = np.zeros((len(recent), len(items)), dtype=np.float64)
        if not items:
            return out
        if cols is None:
            cols = self.slots(items)
        known = cols >= 0
        mine = cols[known]
        scratch = self._scratch
        w = 1.0
        for r, previous in enumerate(recent):
            row = self._rows.get(previous)
            if row:
                n = len(row)
                spread = row.cols[:n]
                scratch[spread] = row.vals[:n]
                out[r, known] = scratch[mine] * (w / math.sqrt(max(self.count(previous), 1.0)))
                scratch[spread] = 0.0
            w *= self.decay
        norm = np.zeros(len(items))
        norm[known] = self._counts[mine]
        out /= np.sqrt(np.maximum(norm, 1.0))
        return out

    def neighbors(self, recent: Sequence[str], n: int, depth: int = 3) -> list[tuple[str, float]]:
        """Candidates: the items that most often followed each of the user's `depth` latest items.

        Strongest raw pair counts per recent item, merged; `contributions` scores them. Each
        row's strongest entries are kept sorted and sorted again once the row has taken an
        eighth of its length in updates since (or when more are asked for): candidates may
        trail the counts by a few updates, while a row is not sorted for every user.
        """
        cols: list[npt.NDArray[np.int32]] = []
        weights: list[DoubleArray] = []
        w = 1.0
        for previous in recent[:depth]:
            top_cols, top_vals = self._strongest(previous, n)
            if len(top_cols):
                cols.append(top_cols)
                weights.append(w * top_vals)
            w *= self.decay
        if not cols:
            return []
        if len(cols) == 1:
            found, sums = cols[0], weights[0]
        else:
            # Summed per item in the order the rows give them (as adding them one by one would),
            # items in the order first met, then the strongest first, ties in that order.
            every = np.concatenate(cols)
            found, first, inverse = np.unique(every, return_index=True, return_inverse=True)
            sums = np.bincount(inverse, weights=np.concatenate(weights)).astype(np.float64, copy=False)
            met = np.argsort(first, kind="stable")
            found, sums = found[met], sums[met]
            best = np.argsort(-sums, kind="stable")[:n]
            found, sums = found[best], sums[best]
        names = self._names
        return list(zip([names[c] for c in found.tolist()], sums.tolist(), strict=True))

    def _strongest(self, item: str, n: int) -> tuple[npt.NDArray[np.int32], DoubleArray]:
        """`item`'s row's `n` strongest entries (other items' slots, counts), strongest first."""
        row = self._rows.get(item)
        if not row:
            return _NO_COLS, _NO_VALS
        cached = self._tops.get(item)
        stale = self._stale.get(item, 0)
        size = len(row)
        if cached is not None and stale <= size // 8 and (len(cached[0]) >= n or len(cached[0]) == size):
            return cached[0][:n], cached[1][:n]
        # The row's n strongest, strongest first, ties in the row's order (as a stable sort
        # gives them).
        values = row.vals[:size]
        order = np.argsort(-values, kind="stable")[:n]
        top = (row.cols[order], values[order])
        self._tops[item] = top
        self._stale[item] = 0
        return top

    def forget(self, item: str) -> None:
        self._rows.pop(item, None)
        col = self._slot.get(item)
        if col is not None:
            self._counts[col] = 0.0
        self._tops.pop(item, None)
        self._stale.pop(item, None)
