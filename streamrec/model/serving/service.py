"""What the recommender worker does with each event, with no broker: apply it once, answer once.

The recommender role reads messages, parses each once and hands the typed events here; it
keeps the loop, the checkpoint and the outputs. A unit test drives this class directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec.model.events.dedupe import Deduplicator, click_id, impression_id, review_id
from streamrec.model.events.schemas import Click, Impression, Trigger
from streamrec.model.metrics.online import OnlineScorer
from streamrec.model.ranking.ranker import Scored
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.reviews import EncodedReview, ReviewLedger
from streamrec.model.users.forgotten import Forgotten

__all__ = ["Erasure", "Serving"]


@dataclass
class Erasure:
    """What a `forget` request erased here, and the review vectors still to tombstone."""

    erased: list[str] = field(default_factory=list)
    #: `(key, partition)` of each of the user's review vectors (partition None: not kept here).
    reviews: list[tuple[bytes, int | None]] = field(default_factory=list)


class Serving:
    """Applies each event once and says whose list to renew.

    Three guards keep a replay from counting twice. `offsets` records, per source
    ("topic:partition"), the next offset not yet applied: events below it (re-delivered
    after a restart) are already in the counts (popularity, co-occurrence), and each profile
    knows which of its events it holds. `seen` recognizes a repeat of a recent event (a
    producer's retry) by its identity.

    Parameters
    ----------
    rec
        The recommender's state and handlers.
    seen
        Identities of recent events.
    online
        Last lists, scored against what users take next.
    reviews
        Review vectors folded into item vectors, to take back when their author is forgotten.
    offsets
        Next offset to apply per "topic:partition" (from a checkpoint).
    forgotten
        Users who asked to be forgotten: their events written before they asked stay out.

    Examples
    --------
    >>> import numpy as np
    >>> rec = Recommender(text_dim=2, cf_dim=3)
    >>> rec.on_item("a", "Acoustic guitar", np.array([1, 0], dtype=np.float32), ts=0)
    >>> rec.on_item("b", "Bass drum", np.array([0, 1], dtype=np.float32), ts=0)
    >>> serving = Serving(rec)
    >>> click = Click(user_id="ann", item_id="a", event="click", ts=1.0)
    >>> at = Trigger(topic="clicks", partition=0, offset=7, ts=1.0)
    >>> serving.click(click, at), serving.click(click, at.model_copy(update={"offset": 8}))
    (True, False)
    >>> [[s.item_id for s in scored] for scored in serving.answer(["ann"], k=1)]
    [['b']]
    """

    def __init__(
        self,
        rec: Recommender,
        seen: Deduplicator | None = None,
        online: OnlineScorer | None = None,
        reviews: ReviewLedger | None = None,
        offsets: dict[str, int] | None = None,
        forgotten: Forgotten | None = None,
    ) -> None:
        self.rec = rec
        self.forgotten = forgotten if forgotten is not None else Forgotten()
        self.seen = seen if seen is not None else Deduplicator()
        self.online = online if online is not None else OnlineScorer()
        self.reviews = reviews if reviews is not None else ReviewLedger()
        self.offsets = offsets if offsets is not None else {}

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the recommender's counts and of this loop's guards
        (`restored` takes it back); the role adds what is its own."""
        return {
            "aggregates": self.rec.aggregates(),
            "text": self.rec.text_state(),
            "seen": self.seen,
            "online": self.online,
            "forgotten": self.forgotten,
        }

    @classmethod
    def restored(cls, rec: Recommender, state: Mapping[str, Any], offsets: Mapping[str, int]) -> Serving:
        """`rec` and its loop as a checkpoint's `state` (from `state`) left them, at `offsets`."""
        rec.restore_aggregates(state["aggregates"])
        rec.restore_text_state(state.get("text", {}))
        return cls(
            rec, state["seen"], _online(state), offsets=dict(offsets), forgotten=state.get("forgotten")
        )

    def advance(self, source: Trigger) -> bool:
        """Move past the message at `source`; True if it was not applied before."""
        tp, _ = source.position
        done = self.offsets.get(tp, 0)
        self.offsets[tp] = max(done, source.offset + 1)
        return source.offset >= done

    # -- a user's events, from their partitions -------------------------------------

    def click(self, click: Click, source: Trigger) -> bool:
        """Apply a click; True if its user's list is to be renewed, False for a repeat (or an
        event of a forgotten user from before they asked)."""
        if self.forgotten.covers(click.user_id, source.ts):
            self.advance(source)
            return False
        fresh = self.advance(source)
        if fresh and self.seen.check(click_id(click)):
            return False
        if fresh:
            self.online.observe(click.user_id, click.item_id)
        at = source.position
        self.rec.on_click(click.user_id, click.item_id, click.event, click.ts, source=at, aggregates=fresh)
        return True

    def impression(self, impression: Impression, source: Trigger) -> bool:
        """Apply an impression; True if its user's list is to be renewed (without what they passed
        over), False for a repeat."""
        if self.forgotten.covers(impression.user_id, source.ts):
            self.advance(source)
            return False
        fresh = self.advance(source)
        if fresh and self.seen.check(impression_id(impression)):
            return False
        at = source.position
        self.rec.on_impression(impression.user_id, impression.items, source=at)
        return True

    def review(self, review: EncodedReview, source: Trigger) -> bool:
        """Apply a review to its author; True if their list is to be renewed, False for a repeat."""
        if self.forgotten.covers(review.user_id, source.ts):
            self.advance(source)
            return False
        fresh = self.advance(source)
        if fresh and self.seen.check(review_id(review.user_id, review.identity)):
            return False
        if fresh:
            self.online.observe(review.user_id, review.item_id)
        at = source.position
        self.rec.on_review(
            review.user_id,
            review.item_id,
            review.rating,
            review.ts,
            review.vector,
            source=at,
            aggregates=fresh,
            polarity=review.polarity,
            opinions=review.opinions,
            version=review.version,
        )
        return True

    def forget(self, user: str, at: float | None = None) -> Erasure:
        """Erase a user from everything this recommender holds; their events written up to `at`
        (the request's time) that come later stay out."""
        out = Erasure()
        if at is not None:
            self.forgotten.mark(user, at)
        if self.rec.forget(user):
            out.erased += ["profile (table tombstone)", "cf vector", "popularity contributions"]
        if self.online.forget(user):
            out.erased.append("last recommendation")
        out.reviews = self.reviews.forget(user)
        return out

    def answer(self, users: Sequence[str], k: int) -> list[list[Scored]]:
        """Rank for `users` and remember each list, to score it against their next event."""
        lists = self.rec.recommend(users, k)
        for user, scored in zip(users, lists, strict=True):
            self.online.remember(user, [s.item_id for s in scored])
        return lists

    # -- every review, from the global feed -----------------------------------------

    def fold_review(self, review: EncodedReview, partition: int) -> bool:
        """What a reviewer wrote also describes the item; False if this review was folded in already.

        A review read by an encoder not yet serving waits, staged, for the switch to it."""
        rec = self.rec
        if review.reencoded and review.key not in self.reviews:
            # Read again from `reviews`, but taken back here (its author was forgotten): it stays out.
            return False
        route = rec.text_route(review.version, review.vector)
        if route == "staged":
            rec.stage_review(review.key, review.item_id, review.rating, review.vector)
        vector = review.vector if route == "active" else None
        if not self.reviews.add(review.key, review.user_id, partition, review.item_id, review.rating, vector):
            # Kept before, read by another encoder: now its text can describe the item.
            if vector is not None and self.reviews.fill(review.key, vector):
                rec.fold_review_text(review.item_id, vector, review.rating)
                return True
            return route == "staged"
        rec.on_item_review(review.item_id, vector, review.rating, review.key, review.opinions, review.user_id)
        return True

    def switch_text(self, version: str) -> list[str]:
        """Serve the staged encoder `version` (`Recommender.switch_text`); the items it left without
        a text vector."""
        staged, lost = self.rec.switch_text(version)
        self.reviews.revector({key: vector for key, (_, _, vector) in staged.reviews.items()})
        return lost

    def unfold_review(self, key: bytes) -> str | None:
        """Take a review back out of its item (its author was forgotten); the item, if it was in."""
        kept = self.reviews.remove(key)
        if kept is None:
            return None
        item, rating, vector = kept
        self.rec.on_item_review_removed(item, vector, rating, key)
        return item


def _online(state: Mapping[str, Any]) -> OnlineScorer:
    """The online scorer of a checkpoint; earlier checkpoints kept its two parts apart."""
    if "online" in state:
        online: OnlineScorer = state["online"]
        return online
    online = OnlineScorer()
    online.rates = state["quality"]
    online.lists = state["last_lists"]
    return online
