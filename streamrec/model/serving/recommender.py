"""The recommender's event handlers: what the recommender worker runs per event.

Offline evaluation drives the very same object, so the numbers it reports are the
numbers of the code in production.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.ranking.reasons import Scored
from streamrec.model.ranking.request import Request
from streamrec.model.serving.erasure import Erasure
from streamrec.model.serving.reviews import ItemReviews, verdict
from streamrec.model.text.opinions import Opinion
from streamrec.model.users.profile import ACTION_WEIGHTS, NEGATIVE_ACTIONS, UserProfile, rating_weight

__all__ = ["Recommender"]


class Recommender(ItemReviews, Erasure):
    """Items, users and the ranker, updated event by event.

    Built with the parameters of `RecommenderState`; keeps items' text vectors as `TextVectors`
    does, reads reviews as `ItemReviews` does, and forgets users as `Erasure` does.

    Examples
    --------
    >>> rec = Recommender(text_dim=2, cf_dim=3)
    >>> rec.on_item("a", "Acoustic guitar", np.array([1, 0], dtype=np.float32), ts=0)
    >>> rec.on_item("b", "Bass drum", np.array([0, 1], dtype=np.float32), ts=0)
    >>> rec.on_item("c", "Classical guitar", np.array([0.9, 0.2], dtype=np.float32), ts=0)
    >>> profile = rec.on_review("ann", "a", rating=5, ts=1, vector=np.array([1, 0.1], dtype=np.float32))
    >>> [s.item_id for s in rec.recommend(["ann"], k=2)[0]]
    ['c', 'b']
    """

    # -- items ----------------------------------------------------------------------

    def on_item(
        self,
        item_id: str,
        title: str,
        vector: FloatArray | None,
        ts: float,
        tags: Sequence[str] = (),
        version: str = "",
    ) -> None:
        """A catalog entry, its tags and the vector of its text (by encoder `version`)."""
        self.tag(item_id, tags)
        self.index.set_payload(item_id, {"title": title})
        self.popularity.add(item_id)
        self.born.setdefault(item_id, ts)
        if vector is None:
            return
        route = self.text_route(version, vector)
        if route == "active":
            self._index_text([item_id], self.item_texts.set_catalog(item_id, vector)[None, :])
            self.generated.content_changed(item_id)
        elif route == "staged":
            assert self.versions.staged is not None
            self.versions.staged.catalog[item_id] = np.asarray(vector, dtype=np.float32)

    def on_item_vector(self, item_id: str, name: str, vector: FloatArray | None) -> None:
        """An item's vector of another modality (`None`: it has none any more)."""
        if name not in self.modalities:
            raise ValueError(f"{name!r} is not a modality of this recommender ({', '.join(self.modalities)})")
        if vector is None:
            self.index.drop(name, [item_id])
        else:
            self.index.upsert(name, [item_id], np.asarray(vector, dtype=np.float32)[None, :])
        self.generated.content_changed(item_id)

    def tag(self, item_id: str, tags: Sequence[str]) -> None:
        """Set an item's tags (what rules and filters select by)."""
        old = self.index.payload(item_id).get("tags") or []
        for t in old:
            self.tagged.get(t, set()).discard(item_id)
        for t in tags:
            self.tagged.setdefault(t, set()).add(item_id)
        self.index.set_payload(item_id, {"tags": list(tags)})

    def withdraw(self, item_id: str) -> bool:
        """Take an item off every list (sold out, withdrawn, deleted); True if it was listed.

        Its vectors and counts stay, so that it returns as it was when it is available again."""
        if item_id in self.index.hidden:
            return False
        self.index.hide([item_id])
        return True

    def restore(self, item_id: str) -> bool:
        """Put a withdrawn item back on lists; True if it was withdrawn."""
        if item_id not in self.index.hidden:
            return False
        self.index.show([item_id])
        return True

    def available(self, item_id: str) -> bool:
        return item_id not in self.index.hidden

    def on_item_cf(self, item_ids: Sequence[str], vectors: FloatArray) -> None:
        """Items' CF vectors as CF learned them; they teach the content map, and go to the index."""
        self.generated.learned(item_ids, vectors)

    # -- counts across users --------------------------------------------------------

    def _count(self, user_id: str, item_id: str, ts: float, weight: float) -> None:
        """Count a user's event in the aggregates: a take, and with `weight` > 0 a like in
        popularity and a pair with their latest items; kept as their contribution."""
        self.popularity.learn_one(item_id, ts, weight)
        self.born.setdefault(item_id, ts)
        self.generated.took(item_id)
        if self.popularity.takes(item_id) == 1:
            self.fresh.delete([item_id])
        if weight > 0:
            self._pair(user_id, item_id)
            recent = self.contributions.recent(user_id, self.cooccurrence.window, leaving=item_id)
            self.cooccurrence.learn_one(recent, item_id)
        self.contributions.record(user_id, item_id, ts, weight)
        self._since_fit += 1
        self._fit_when_due()

    def _learn(self, user_id: str, item_id: str, liked: bool) -> None:
        """The ranker's blend learns a take (or a pan) against the user's last list, before the take
        changes anything."""
        if self.ranker.learn_blend and user_id in self.ranker.ranked:
            self.ranker.learn(self.request(user_id), item_id, liked)

    @contextmanager
    def learning_batch(self, takes: Iterable[tuple[str, str]]) -> Iterator[int]:
        """Apply a batch of events within it: the blend learns the batch's takes (user, item)
        from one scoring of all their candidates, as they stood before the batch, rather than
        one scoring a take. Yields how many takes were prepared; what the batch did not take
        (a repeat, a forgotten user) is dropped at the end."""
        prepared = 0
        if self.ranker.learn_blend:
            requests: dict[str, Request] = {}
            pairs = []
            for user, item in dict.fromkeys(takes):
                if user in self.ranker.ranked:  # a user never ranked for has nothing to learn
                    if user not in requests:
                        requests[user] = self.request(user)
                    pairs.append((requests[user], item))
            prepared = self.ranker.prepare(pairs)
        try:
            yield prepared
        finally:
            self.ranker.unprepare()

    def _took(self, from_list: bool | None) -> None:
        """A user took something after an impression: counted in every user's habits."""
        if from_list is not None:
            self.habits.took(from_list)

    # -- users ----------------------------------------------------------------------

    def profile(self, user_id: str) -> UserProfile:
        """A user's profile (a new one if none), its text vectors in the active encoder's space."""
        profile = self.profiles.get(user_id)
        if profile is None:
            return UserProfile(
                user_id,
                half_life_s=self.half_life_s,
                max_seen=self.max_seen,
                text_version=self.versions.active,
            )
        if self._foreign(profile):
            profile.rebase(self.versions.active, self.item_text)
        profile.text_version = self.versions.active or profile.text_version
        return profile

    def _foreign(self, profile: UserProfile) -> bool:
        """Whether a profile's text vectors are of another encoder than the one that serves (a
        profile stored before versions were named is of the first, unless its size says otherwise)."""
        active = self.versions.active
        if not active or profile.text_version == active:
            return False
        if not profile.text_version:
            first = not self.versions.retired and self.versions.switches == 0
            size = len(profile.text_sum) if profile.text_sum is not None else self.text_dim
            return not first or size != self.text_dim
        return True

    def _read_profile(self, user_id: str) -> UserProfile | None:
        """A user's profile to rank with, left as stored: one of another encoder's space is
        read as a moved copy (stored as moved at the user's next event)."""
        profile = self.profiles.get(user_id)
        if profile is not None and self._foreign(profile):
            profile = copy.copy(profile)
            profile.rebase(self.versions.active, self.item_text)
        return profile

    def user_text(self, user_id: str) -> FloatArray | None:
        """A user's text vector in the active encoder's space, or None."""
        profile = self._read_profile(user_id)
        vector = profile.text_vector() if profile is not None else None
        return None if vector is None else self._project_one(vector)

    def on_user_cf(self, user_ids: Sequence[str], vectors: FloatArray) -> None:
        for user, vector in zip(user_ids, vectors, strict=True):
            self.user_cf[user] = np.asarray(vector, dtype=np.float32)

    def on_click(
        self,
        user_id: str,
        item_id: str,
        event: str,
        ts: float,
        source: tuple[str, int] | None = None,
        aggregates: bool = True,
    ) -> UserProfile:
        """Record a click. `source` ("topic:partition", offset) makes a replay a no-op for the
        profile; `aggregates=False` leaves popularity and co-occurrence alone (already counted)."""
        profile = self.profile(user_id)
        negative = event in NEGATIVE_ACTIONS
        if aggregates:
            self._learn(user_id, item_id, liked=not negative)
            self._count(user_id, item_id, ts, 0.0 if negative else ACTION_WEIGHTS.get(event, 1.0))
        if not profile.applied(source):
            if negative:
                profile.dislike(item_id, ts, event, self.item_text(item_id))
            else:
                self._took(profile.observe(item_id, ts, event, vector=self.item_text(item_id)))
            if source is not None:
                profile.offsets[source[0]] = source[1]
            self.profiles[user_id] = profile
        return profile

    def on_review(
        self,
        user_id: str,
        item_id: str,
        rating: float | None,
        ts: float,
        vector: FloatArray | None,
        source: tuple[str, int] | None = None,
        aggregates: bool = True,
        polarity: float | None = None,
        opinions: Sequence[Opinion] = (),
        version: str = "",
    ) -> UserProfile:
        """Record a review: a like, or, when it reads negative, a dislike (see `is_negative`).

        `polarity` and `opinions` are the encoder role's reading of its text, `version` the encoder
        that wrote `vector`."""
        profile = self.profile(user_id)
        negative = self.is_negative(rating, polarity)
        if aggregates:
            self._learn(user_id, item_id, liked=not negative)
            # A panned item is no like anywhere: it counts toward neither popularity nor co-occurrence.
            self._count(user_id, item_id, ts, 0.0 if negative else ACTION_WEIGHTS["review"])
        if not profile.applied(source):
            said = vector
            if vector is not None and self.text_route(version, vector) != "active":
                vector = None  # of an encoder that does not serve yet: never mixed in
            if vector is None:
                # A rating without text: the item's own description stands for it.
                vector = self.item_text(item_id)
            if negative:
                # Never a like: what the item is (and what was said for it before) leaves the
                # profile; with the dislike push, the user's lists move away from it.
                item = self.item_text(item_id)
                profile.retract(item_id, item)
                pushed = (item if item is not None else vector) if "dislikes" in self.opinions else None
                profile.dislike(item_id, ts, "dislike", pushed)
            else:
                from_list = profile.observe(
                    item_id, ts, "review", vector=vector, weight=rating_weight(rating)
                )
                self._took(from_list)
            if "aspects" in self.opinions and said is not None:
                profile.note(verdict(rating, polarity), opinions, item_id)
            if source is not None:
                profile.offsets[source[0]] = source[1]
            self.profiles[user_id] = profile
        return profile

    def on_impression(
        self, user_id: str, items: Sequence[str], source: tuple[str, int] | None = None
    ) -> UserProfile:
        """Items were shown to a user: those they pass over rank lower on their next lists."""
        profile = self.profile(user_id)
        if not profile.applied(source):
            profile.show(items)
            # What the user saw is what their next take is chosen from: the blend learns against it.
            self.ranker.remember(user_id, items)
            if source is not None:
                profile.offsets[source[0]] = source[1]
            self.profiles[user_id] = profile
        return profile

    # -- ranking --------------------------------------------------------------------

    def request(self, user_id: str, exclude: Iterable[str] = (), tags: Iterable[str] = ()) -> Request:
        profile = self._read_profile(user_id)
        seen = set(profile.seen) if profile is not None else set()
        seen.update(exclude)
        cf = self.user_cf.get(user_id)
        return Request(profile=profile, cf_vector=cf, exclude=seen, tags=frozenset(tags), user=user_id)

    def recommend(
        self, user_ids: Sequence[str], k: int = 10, exclude: Iterable[str] = (), tags: Iterable[str] = ()
    ) -> list[list[Scored]]:
        """Each user's list (`exclude`, `tags`: filters asked for, on top of the rules)."""
        exclude, tags = list(exclude), list(tags)
        return self.ranker.recommend_many([self.request(u, exclude, tags) for u in user_ids], k)
