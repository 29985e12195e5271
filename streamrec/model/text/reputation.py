"""What reviewers say of each item, per aspect: how many reviewers, how well, and their strongest words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from streamrec.model.base import DoubleArray
from streamrec.model.text.opinions import Opinion, stance

__all__ = ["Reputation"]


class Reputation:
    """Per item and aspect: the reviews that speak of it, how many reviewers praise it, and evidence.

    Each review counts once per aspect, with the mean polarity of its clauses on that aspect:
    a review that praises the price three times is one reviewer praising it. An item's standing
    on an aspect is the sum of its reviews' polarities over their number plus `shrinkage`: one
    glowing review moves it less than ten. The strongest praise and the strongest criticism are
    kept with the review they come from, to quote; a review's opinions can be taken back (its
    author was forgotten).

    Parameters
    ----------
    shrinkage
        Reviews of no polarity every item starts with, per aspect.

    Examples
    --------
    >>> from streamrec.model.text.opinions import Opinion, stance
    >>> rep = Reputation()
    >>> rep.add(b"r1", "mic", [Opinion("sound", 0.9, 0, 17, "warm, clear sound"),
    ...                        Opinion("sound", 0.5, 19, 31, "great mids")], "ann")
    >>> rep.add(b"r2", "mic", [Opinion("sound", 0.7, 0, 12, "sounds great")], "bob")
    >>> round(rep.standing("mic", "sound"), 3), rep.counts("mic", "sound"), rep.quote("mic", "sound", 1)
    (0.35, (2, 2), 'warm, clear sound')
    >>> rep.remove(b"r1"); rep.counts("mic", "sound")
    (1, 1)
    """

    def __init__(self, shrinkage: float = 2.0) -> None:
        self.shrinkage = shrinkage
        #: item -> aspect -> [reviews, sum of their polarities]
        self._stats: dict[str, dict[str, list[float]]] = {}
        #: item -> aspect -> author -> [their reviews of it, those that praise it]
        self._authors: dict[str, dict[str, dict[str, list[int]]]] = {}
        #: item -> aspect -> {+1: [polarity, snippet, key], -1: [...]}: the strongest of each sign
        self._quotes: dict[str, dict[str, dict[int, list[Any]]]] = {}
        #: review key -> (item, author, [(aspect, polarity)]), to take a review back
        self._reviews: dict[bytes, tuple[str, str, list[tuple[str, float]]]] = {}

    def __len__(self) -> int:
        return len(self._stats)

    def add(self, key: bytes, item: str, opinions: Sequence[Opinion], author: str = "") -> None:
        """A review's opinions on `item`, by `author` (default: the key); a key seen before is ignored."""
        if not opinions or key in self._reviews:
            return
        author = author or key.decode("utf-8", "replace")
        per_aspect: dict[str, list[float]] = {}
        quotes = self._quotes.setdefault(item, {})
        for opinion in opinions:
            per_aspect.setdefault(opinion.aspect, []).append(float(opinion.polarity))
            sign = stance(opinion.polarity)
            best = quotes.setdefault(opinion.aspect, {}).get(sign)
            # Only a reading sure enough to be stated is quoted as praise or criticism.
            if sign and (best is None or abs(opinion.polarity) > abs(best[0])):
                quotes[opinion.aspect][sign] = [float(opinion.polarity), opinion.text, key]
        votes = [(aspect, sum(values) / len(values)) for aspect, values in per_aspect.items()]
        stats = self._stats.setdefault(item, {})
        authors = self._authors.setdefault(item, {})
        for aspect, polarity in votes:
            row = stats.setdefault(aspect, [0.0, 0.0])
            row[0] += 1
            row[1] += polarity
            mine = authors.setdefault(aspect, {}).setdefault(author, [0, 0])
            mine[0] += 1
            mine[1] += stance(polarity) > 0
        self._reviews[key] = (item, author, votes)

    def remove(self, key: bytes) -> None:
        kept = self._reviews.pop(key, None)
        if kept is None:
            return
        item, author, votes = kept
        stats, quotes = self._stats.get(item, {}), self._quotes.get(item, {})
        authors = self._authors.get(item, {})
        for aspect, polarity in votes:
            row = stats.get(aspect)
            if row is not None:
                row[0] -= 1
                row[1] -= polarity
                if row[0] <= 0:
                    del stats[aspect]
            mine = authors.get(aspect, {}).get(author)
            if mine is not None:
                mine[0] -= 1
                mine[1] -= stance(polarity) > 0
                if mine[0] <= 0:
                    del authors[aspect][author]
            for sign, best in list(quotes.get(aspect, {}).items()):
                if best[2] == key:
                    del quotes[aspect][sign]

    def standing(self, item: str, aspect: str) -> float:
        row = self._stats.get(item, {}).get(aspect)
        return 0.0 if row is None else row[1] / (row[0] + self.shrinkage)

    def counts(self, item: str, aspect: str) -> tuple[int, int]:
        """`(reviewers who speak of it, reviewers who praise it)`, for `item` on `aspect`."""
        authors = self._authors.get(item, {}).get(aspect, {})
        return len(authors), sum(1 for mine in authors.values() if mine[1] > 0)

    def quote(self, item: str, aspect: str, sign: int) -> str | None:
        """The strongest praise (`sign` 1) or criticism (-1) of `item` on `aspect`, if any."""
        best = self._quotes.get(item, {}).get(aspect, {}).get(sign)
        return None if best is None else str(best[1])

    def aspects_of(self, item: str) -> list[str]:
        """The aspects reviewers spoke of for `item`."""
        return list(self._stats.get(item, {}))

    def items(self) -> list[str]:
        """Every item some review spoke of an aspect of."""
        return list(self._stats)

    def standings(self, items: Sequence[str], aspects: Sequence[str]) -> DoubleArray:
        """`standing` of each item (row) on each aspect (column)."""
        out = np.zeros((len(items), len(aspects)))
        column = {a: j for j, a in enumerate(aspects)}
        for i, item in enumerate(items):
            for aspect, row in self._stats.get(item, {}).items():
                j = column.get(aspect)
                if j is not None:
                    out[i, j] = row[1] / (row[0] + self.shrinkage)
        return out
