"""What reviewers say of each item, per aspect: how many, how well, and their strongest words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from streamrec.model.base import DoubleArray

__all__ = ["Reputation"]


class Reputation:
    """Per item and aspect: the opinions reviewers gave, their mean polarity, and evidence.

    An item's standing on an aspect is the sum of its opinions' polarities over their number
    plus `shrinkage`: one glowing review moves it less than ten. The strongest praise and the
    strongest criticism are kept with the review they come from, to quote; a review's
    opinions can be taken back (its author was forgotten).

    Parameters
    ----------
    shrinkage
        Opinions of no polarity every item starts with, per aspect.

    Examples
    --------
    >>> rep = Reputation()
    >>> rep.add(b"r1", "mic", [("sound", 0.9, "warm, clear sound")])
    >>> rep.add(b"r2", "mic", [("sound", 0.7, "sounds great")])
    >>> round(rep.standing("mic", "sound"), 3), rep.counts("mic", "sound"), rep.quote("mic", "sound", 1)
    (0.4, (2, 2), 'warm, clear sound')
    >>> rep.remove(b"r1"); rep.counts("mic", "sound")
    (1, 1)
    """

    def __init__(self, shrinkage: float = 2.0) -> None:
        self.shrinkage = shrinkage
        #: item -> aspect -> [opinions, praising ones, sum of polarities]
        self._stats: dict[str, dict[str, list[float]]] = {}
        #: item -> aspect -> {+1: [polarity, snippet, key], -1: [...]}: the strongest of each sign
        self._quotes: dict[str, dict[str, dict[int, list[Any]]]] = {}
        #: review key -> (item, [(aspect, polarity)]), to take a review back
        self._reviews: dict[bytes, tuple[str, list[tuple[str, float]]]] = {}

    def __len__(self) -> int:
        return len(self._stats)

    def add(self, key: bytes, item: str, opinions: Sequence[tuple[str, float, str]]) -> None:
        """A review's `(aspect, polarity, snippet)` opinions on `item`; a key seen before is ignored."""
        if not opinions or key in self._reviews:
            return
        stats = self._stats.setdefault(item, {})
        quotes = self._quotes.setdefault(item, {})
        for aspect, polarity, snippet in opinions:
            row = stats.setdefault(aspect, [0.0, 0.0, 0.0])
            row[0] += 1
            row[1] += polarity > 0
            row[2] += polarity
            sign = 1 if polarity > 0 else -1
            best = quotes.setdefault(aspect, {}).get(sign)
            if best is None or abs(polarity) > abs(best[0]):
                quotes[aspect][sign] = [float(polarity), snippet, key]
        self._reviews[key] = (item, [(a, float(p)) for a, p, _ in opinions])

    def remove(self, key: bytes) -> None:
        kept = self._reviews.pop(key, None)
        if kept is None:
            return
        item, opinions = kept
        stats, quotes = self._stats.get(item, {}), self._quotes.get(item, {})
        for aspect, polarity in opinions:
            row = stats.get(aspect)
            if row is not None:
                row[0] -= 1
                row[1] -= polarity > 0
                row[2] -= polarity
                if row[0] <= 0:
                    del stats[aspect]
            for sign, best in list(quotes.get(aspect, {}).items()):
                if best[2] == key:
                    del quotes[aspect][sign]

    def standing(self, item: str, aspect: str) -> float:
        row = self._stats.get(item, {}).get(aspect)
        return 0.0 if row is None else row[2] / (row[0] + self.shrinkage)

    def counts(self, item: str, aspect: str) -> tuple[int, int]:
        """`(opinions, praising ones)` of `item` on `aspect`."""
        row = self._stats.get(item, {}).get(aspect)
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def quote(self, item: str, aspect: str, sign: int) -> str | None:
        """The strongest praise (`sign` 1) or criticism (-1) of `item` on `aspect`, if any."""
        best = self._quotes.get(item, {}).get(aspect, {}).get(sign)
        return None if best is None else str(best[1])

    def standings(self, items: Sequence[str], aspects: Sequence[str]) -> DoubleArray:
        """`standing` of each item (row) on each aspect (column)."""
        out = np.zeros((len(items), len(aspects)))
        column = {a: j for j, a in enumerate(aspects)}
        for i, item in enumerate(items):
            for aspect, row in self._stats.get(item, {}).items():
                j = column.get(aspect)
                if j is not None:
                    out[i, j] = row[2] / (row[0] + self.shrinkage)
        return out
