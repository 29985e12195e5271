"""What the CF worker does with each event, with no broker: learn it once, share item changes once.

The CF role reads messages in batches, parses each once and hands the typed events here; it
keeps the loop, the checkpoint and the outputs. A unit test drives this class directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamrec.model.base import FloatArray
from streamrec.model.cf.fence import Claim, Commit, Fence
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.errors import InvalidEvent
from streamrec.model.events.dedupe import Deduplicator, click_id, impression_id, review_id, review_identity
from streamrec.model.events.schemas import Click, Impression, Review
from streamrec.model.text.sentiment import rating_label
from streamrec.model.users.forgotten import Forgotten
from streamrec.model.users.profile import NEGATIVE_ACTIONS

__all__ = ["DeltaBatch", "Learner"]

#: Item rows per shared delta message.
DELTAS_PER_PART = 500
#: Stands for every part of a batch, in checkpoints that tracked whole batches only.
ALL_PARTS = 1 << 30


@dataclass(frozen=True)
class DeltaBatch:
    """One part of what a CF worker's learning changed in item factors since its last share."""

    worker: str
    seq: int
    part: int
    items: dict[str, FloatArray]
    #: The commit attempt it belongs to ("": written before commits, applied as read).
    attempt: str = ""

    @property
    def mark(self) -> tuple[int, int]:
        return self.seq, self.part


class Learner:
    """Learns every valid event exactly once and keeps the CF workers' item factors as one.

    A review of 1-2 stars (unless `negatives` is off), a `dislike` or a `skip` is learned as a
    negative (the user did not want the item), every other interaction as a positive. A
    review's text is the encoder's to read: this role sees ratings, so a negative review
    without a rating is a positive here (the recommender, which reads its polarity, demotes
    what it resembles).

    A click or review on an item outside the catalog is rejected (`unknown_item`): a typo in
    an id would otherwise grow the model forever. A repeat of a recent event (a producer's
    retry) is recognized by its identity and learned once.

    CF workers split the users but share the items: each sends what its learning changed in
    item factors with the offsets it learned up to (`share`: parts of `DELTAS_PER_PART` items,
    then a commit) and reads what every worker sent on the same log (`receive`): the others'
    parts of a commit the `fence` finds valid are added, each part once, by its `(seq, part)`
    mark per worker (`apply`).

    Parameters
    ----------
    model
        The online CF model.
    seen
        Identities of recent events.
    worker
        This worker's name among CF workers (default: a new random one).
    delta_seq
        How many delta batches this worker has shared.
    applied
        The last `(seq, part)` applied per other worker.
    negatives
        Learn a review of 1-2 stars as a negative (the ``cf_negatives`` opinion part); False:
        as a take, like any other review.
    forgotten
        Users who asked to be forgotten (from a checkpoint).
    fence
        The group log's claims and verdicts as far as read (from a checkpoint).

    Examples
    --------
    >>> learner = Learner(OnlineCF(seed=1), worker="w1")
    >>> learner.catalog.update({"guitar", "drum"})
    >>> click = Click(user_id="ann", item_id="guitar", event="click", ts=1.0)
    >>> learner.learn(click), learner.learn(click), learner.model.n_learned
    (True, False, 1)
    >>> parts, commit = learner.share({})
    >>> peer = Learner(OnlineCF(seed=1), worker="w2")
    >>> [peer.receive(m) for m in [*parts, commit]], [peer.apply(p) for p in parts]
    ([False, True], [False])
    """

    def __init__(
        self,
        model: OnlineCF,
        seen: Deduplicator | None = None,
        worker: str | None = None,
        delta_seq: int = 0,
        applied: dict[str, tuple[int, int]] | None = None,
        negatives: bool = True,
        forgotten: Forgotten | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.model = model
        #: Users who asked to be forgotten, and when.
        self.forgotten = forgotten if forgotten is not None else Forgotten()
        self.negatives = negatives
        self.seen = seen if seen is not None else Deduplicator()
        self.worker = worker or uuid.uuid4().hex
        self.fence = fence if fence is not None else Fence(me=self.worker)
        self.delta_seq = delta_seq
        self.applied: dict[str, tuple[int, int]] = dict(applied or {})
        #: Item ids of the catalog, as far as it has been read.
        self.catalog: set[str] = set()

    def state(self) -> dict[str, object]:
        """What a checkpoint keeps of it (`from_state` takes it back)."""
        return {
            "cf": self.model,
            "seen": self.seen,
            "worker": self.worker,
            "delta_seq": self.delta_seq,
            "applied_seq": dict(self.applied),
            "forgotten": self.forgotten,
            "fence": self.fence,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], negatives: bool = True) -> Learner:
        """A learner as `state` left it (checkpoints of every version so far)."""
        return cls(
            state["cf"],
            state["seen"],
            state["worker"],
            state["delta_seq"],
            {
                # A whole batch (an int) in checkpoints written before parts were tracked.
                w: (mark, ALL_PARTS) if isinstance(mark, int) else tuple(mark)
                for w, mark in state["applied_seq"].items()
            },
            negatives=negatives,
            forgotten=state.get("forgotten"),
            fence=state.get("fence"),
        )

    def learn(self, event: Click | Impression | Review, written: float | None = None) -> bool:
        """Learn one event; False if it repeats a recent one, or if its user asked to be forgotten
        after it was written (`written`: its message time, in seconds).

        Raises `InvalidEvent` (`unknown_item`) for an item that is not in `catalog` (an
        impression's items outside it are passed over).
        """
        if written is not None and self.forgotten.covers(event.user_id, written):
            return False
        if isinstance(event, Impression):
            if self.seen.check(impression_id(event)):
                return False
            self.model.learn_exposure(event.user_id, [i for i in event.items if i in self.catalog])
            return True
        if event.item_id not in self.catalog:
            raise InvalidEvent("unknown_item", f"item_id must be in the catalog, got {event.item_id!r}")
        if isinstance(event, Click):
            mark, rating = click_id(event), None
            negative = event.event in NEGATIVE_ACTIONS
        else:
            mark, rating = review_id(event.user_id, review_identity(event)), event.rating
            negative = self.negatives and rating_label(rating) == 0
        # Only valid events count as seen: a repeated bad message is rejected again.
        if self.seen.check(mark):
            return False
        if negative:
            self.model.learn_negative(event.user_id, event.item_id, rating)
        else:
            self.model.learn_one(event.user_id, event.item_id, rating)
        return True

    def forget(self, user: str, at: float | None = None) -> list[str]:
        """Erase a user's factors; what was erased. Their events written up to `at` (the request's
        time, in seconds) that come later are passed over."""
        if at is not None:
            self.forgotten.mark(user, at)
        return ["cf factors"] if self.model.forget_user(user) else []

    def share(self, covers: dict[str, tuple[int, str]]) -> tuple[list[DeltaBatch], Commit]:
        """What local learning changed in item factors since the last call, in parts, and the
        commit that makes them count, with `covers` (see `Commit`)."""
        attempt = uuid.uuid4().hex[:16]
        deltas = self.model.take_item_deltas()
        parts: list[DeltaBatch] = []
        if deltas:
            self.delta_seq += 1
            parts = list(self._parts([(str(item), row) for item, row in deltas.items()], attempt))
        return parts, Commit(self.worker, attempt, len(parts), covers)

    def _parts(self, items: list[tuple[str, FloatArray]], attempt: str) -> Iterator[DeltaBatch]:
        for part, start in enumerate(range(0, len(items), DELTAS_PER_PART)):
            chunk = dict(items[start : start + DELTAS_PER_PART])
            yield DeltaBatch(self.worker, self.delta_seq, part, chunk, attempt)

    def receive(self, message: Claim | Commit | DeltaBatch) -> bool:
        """Read the next record of the group's log; True if it changed item factors."""
        if isinstance(message, Claim):
            self.fence.claim(message)
            return False
        if isinstance(message, Commit):
            parts = self.fence.commit(message) or []
            return sum(self.apply(part) for part in parts) > 0  # type: ignore[arg-type]
        if not message.attempt:
            return self.apply(message)
        if message.worker != self.worker:
            self.fence.part(message.worker, message.attempt, message)
        return False

    def apply(self, batch: DeltaBatch) -> bool:
        """Add another worker's changes; False for our own, or a part applied before."""
        if batch.worker == self.worker or batch.mark <= self.applied.get(batch.worker, (0, 0)):
            return False
        self.model.apply_item_deltas(batch.items)
        self.applied[batch.worker] = batch.mark
        return True
