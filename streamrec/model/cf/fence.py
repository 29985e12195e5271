"""Whose learning counts: CF workers' claims and commits, judged in the order of one log.

CF workers split the input partitions through a consumer group and share item factor changes on
the `cf-deltas` log. A worker dropped from the group (paused past its session timeout) does not
know it yet: it goes on learning events whose partition another worker now learns from the last
commit, and whatever it then commits would count those events twice. Brokers fence such a "zombie"
with transactions and group generations when they implement them; this fence does not rely on
the broker. Each worker writes, on the same single-partition log:

- a `Claim` when the group gives it partitions (one new claim id per partition and assignment);
- its item factor changes in parts, then a `Commit` naming the input offsets it learned up to and
  the claim it learned each partition under.

A commit is valid when every partition it covers is still held by the claim it names: no other
claim of that partition came before it in the log. Every worker reads the same log in the same
order, so all reach the same verdict: the parts of a valid commit are applied by the others, those
of an invalid one by nobody, and the worker that wrote it drops what it learned since its last
valid commit. A worker that takes a partition starts it where the latest valid commit left it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Claim", "Commit", "Fence"]

#: Verdicts on a worker's own commits kept for it to read (it reads each right after writing it).
OWN_VERDICTS = 64


@dataclass(frozen=True)
class Claim:
    """`worker` learns these partitions ("topic:partition" -> claim id) from now on."""

    worker: str
    partitions: Mapping[str, str]


@dataclass(frozen=True)
class Commit:
    """`worker`'s attempt `attempt` commits `parts` delta parts and the offsets in `covers`
    ("topic:partition" -> (next offset, claim id it was learned under))."""

    worker: str
    attempt: str
    parts: int
    covers: Mapping[str, tuple[int, str]] = field(default_factory=dict)


class Fence:
    """The verdicts of one CF group's log, as one worker (`me`) reads it.

    Examples
    --------
    A worker paused past its session timeout commits after another claimed its partition:

    >>> fence = Fence(me="b")
    >>> fence.claim(Claim("a", {"clicks:0": "a1"}))
    >>> fence.part("a", "t1", "delta 1")
    >>> fence.commit(Commit("a", "t1", 1, {"clicks:0": (100, "a1")}))
    ['delta 1']
    >>> fence.claim(Claim("b", {"clicks:0": "b1"}))
    >>> fence.part("a", "t2", "delta 2")
    >>> fence.commit(Commit("a", "t2", 1, {"clicks:0": (180, "a1")})) is None
    True
    >>> fence.position["clicks:0"]
    100
    """

    def __init__(self, me: str) -> None:
        self.me = me
        #: The latest claim id per "topic:partition".
        self.owner: dict[str, str] = {}
        #: Where the latest valid commit left each partition (next offset to learn).
        self.position: dict[str, int] = {}
        #: Per worker, the parts of its attempt whose commit is still to come.
        self._pending: dict[str, tuple[str, list[object]]] = {}
        #: Valid or not, per attempt of `me` (the latest `OWN_VERDICTS`).
        self.verdicts: dict[str, bool] = {}
        #: Per worker, its latest commit read and whether it was valid: what a worker restarted
        #: without a checkpoint of its own judges a crashed one's staged checkpoint by.
        self.last: dict[str, tuple[str, bool]] = {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("last", {})  # checkpoints from before it was kept

    def holds(self, worker: str, attempt: str) -> bool:
        """Whether `attempt` of `worker` was committed validly (as its latest commit, when the
        worker is not `me`)."""
        if worker == self.me:
            return bool(self.verdicts.get(attempt))
        return self.last.get(worker) == (attempt, True)

    def claim(self, claim: Claim) -> None:
        self.owner.update(claim.partitions)

    def part(self, worker: str, attempt: str, part: object) -> None:
        """Hold a part until its commit is read; a worker's new attempt drops its unfinished one
        (a worker that crashed between its parts and its commit)."""
        held = self._pending.get(worker)
        if held is None or held[0] != attempt:
            held = self._pending[worker] = (attempt, [])
        held[1].append(part)

    def valid(self, commit: Commit) -> bool:
        return all(self.owner.get(tp) == claim for tp, (_, claim) in commit.covers.items())

    def commit(self, commit: Commit) -> list[object] | None:
        """The parts to apply if `commit` is valid (none of `me`'s own), else None."""
        held = self._pending.pop(commit.worker, None)
        parts = held[1] if held is not None and held[0] == commit.attempt else []
        ok = self.valid(commit)
        self.last[commit.worker] = (commit.attempt, ok)
        if commit.worker == self.me:
            self.verdicts[commit.attempt] = ok
            if len(self.verdicts) > OWN_VERDICTS:
                del self.verdicts[next(iter(self.verdicts))]
        if not ok:
            return None
        for tp, (offset, _) in commit.covers.items():
            self.position[tp] = max(offset, self.position.get(tp, 0))
        return [] if commit.worker == self.me else parts
