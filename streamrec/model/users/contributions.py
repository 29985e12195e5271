"""Each user's share of the counts every user adds to: what a `forget` request takes back in full.

Popularity, co-occurrence and take counts are sums over every user's events. To take a user out
of them, every event of theirs that was added has to be known, long after their profile has let
it go (a profile keeps its latest 50). So each such event is kept here, in order: the item, when,
and the weight it added to popularity (0 for an event that added to the take count only, such as
a dislike). Co-occurrence pairs an event with the user's items just before it, and those are read
from here too (`recent`), so that taking a user back replays exactly the pairs that were added.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["Contributions", "Take"]

#: `(item_id, ts, weight)`: one event counted; weight 0 counted it as a take only.
Take = tuple[str, float, float]


class Contributions:
    """Per user, the events counted in the shared aggregates, oldest first.

    Examples
    --------
    >>> shares = Contributions()
    >>> for item, weight in (("tent", 1.0), ("stove", 1.0), ("lamp", 0.0), ("stove", 1.0)):
    ...     shares.record("ann", item, ts=0.0, weight=weight)
    >>> shares.recent("ann", 5, leaving="rope")
    ['stove', 'tent']
    >>> [(item, recent) for item, _, _, recent in shares.replay(shares.pop("ann"), 5)]
    [('tent', []), ('stove', ['tent']), ('lamp', []), ('stove', ['tent'])]
    """

    def __init__(self) -> None:
        self._takes: dict[str, list[Take]] = {}

    def __len__(self) -> int:
        return len(self._takes)

    def __contains__(self, user: object) -> bool:
        return user in self._takes

    def record(self, user: str, item: str, ts: float, weight: float) -> None:
        """Count one event of `user` (after reading `recent` for it, if it pairs)."""
        self._takes.setdefault(user, []).append((item, ts, weight))

    def recent(self, user: str, n: int, leaving: str) -> list[str]:
        """The user's latest `n` items that counted, most recent first, each once, without
        `leaving` (the item being taken now) and without items whose latest event was counted as a
        take only (a dislike)."""
        takes = self._takes.get(user, [])
        return _recent(takes, len(takes), n, leaving)

    def liked(self) -> list[list[str]]:
        """Each user's items that counted as liked (weight > 0), oldest first.

        >>> shares = Contributions()
        >>> shares.record("ann", "tent", 0.0, 1.0); shares.record("ann", "lamp", 1.0, 0.0)
        >>> shares.liked()
        [['tent']]
        """
        return [[item for item, _, weight in takes if weight > 0] for takes in self._takes.values()]

    def pop(self, user: str) -> list[Take]:
        """Everything the user added, oldest first; they are no longer known here."""
        return self._takes.pop(user, [])

    @staticmethod
    def replay(takes: Sequence[Take], n: int) -> Iterator[tuple[str, float, float, list[str]]]:
        """Each event with the items it was paired with when it was counted (for weight > 0)."""
        for at, (item, ts, weight) in enumerate(takes):
            yield item, ts, weight, _recent(takes, at, n, item) if weight > 0 else []


def _recent(takes: Sequence[Take], end: int, n: int, leaving: str) -> list[str]:
    """`Contributions.recent` as it was before `takes[end]`."""
    out: list[str] = []
    passed = {leaving}
    for at in range(end - 1, -1, -1):
        item, _, weight = takes[at]
        if item in passed:
            continue
        passed.add(item)
        if weight > 0:
            out.append(item)
            if len(out) == n:
                break
    return out
