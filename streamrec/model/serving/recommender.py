"""The recommender's state and event handlers: what the recommender worker runs per event.

Offline evaluation drives the very same object, so the numbers it reports are the
numbers of the code in production.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.cf.content import ContentToCF
from streamrec.model.cf.ease import EASE
from streamrec.model.cf.generated import GeneratedCF
from streamrec.model.index import MemoryIndex, Metric
from streamrec.model.ranking.popularity import CoOccurrence, Popularity
from streamrec.model.ranking.ranker import HybridRanker, Request, Scored
from streamrec.model.ranking.rules import Rules
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.text.opinion_parts import parts_of
from streamrec.model.text.opinions import Opinion
from streamrec.model.text.projection import TextProjection
from streamrec.model.text.reputation import Reputation
from streamrec.model.text.sentiment import rating_label
from streamrec.model.text.space import TextSpace
from streamrec.model.text.versions import Route, StagedText, TextVersions
from streamrec.model.text.wording import Wording
from streamrec.model.users.contributions import Contributions
from streamrec.model.users.exposure import Habits
from streamrec.model.users.profile import ACTION_WEIGHTS, NEGATIVE_ACTIONS, UserProfile, rating_weight

__all__ = ["Recommender", "verdict"]


def verdict(rating: float | None, polarity: float | None) -> float:
    """How a review reads, in [-1, 1]: its rating when it has one, else what its text says.

    >>> verdict(5, -0.2), verdict(1, None), verdict(None, 0.4), verdict(None, None)
    (1.0, -1.0, 0.4, 0.0)
    """
    if rating is not None:
        return (float(rating) - 3.0) / 2.0
    return 0.0 if polarity is None else float(polarity)


class Recommender:
    """Items, users and the ranker, updated event by event.

    Parameters
    ----------
    text_dim
        Dimension of the encoder's vectors (the first versioned vectors to arrive may change it).
    cf_dim
        Dimension of CF retrieval vectors (`n_factors + 1`).
    profiles
        Where user profiles live (a dict, or a changelog-backed table).
    half_life_s
        Half-life of the user text profile and of trending popularity (event time).
    max_seen
        Items remembered per user for exclusion (None: all).
    opinions
        Which parts of reading reviews as opinions are on (`opinion_parts.PARTS`: a review
        that reads negative, by its rating or by what its text says as the encoder role read
        it, is a dislike; is left out of popularity and co-occurrence; what reviews say of
        aspects builds reputations and profiles). True: the default parts; False: none, every
        review a like.
    negative_below
        Polarity under which a review without a decisive rating (none, or 3 stars) is negative.
    content_cf
        Give an item CF has learned from fewer than `content_full_takes` interactions the CF
        vector its text predicts (`ContentToCF`, learned from the items CF knows), blended out
        as its interactions arrive: a new item takes part in collaborative ranking at once.
    content_full_takes
        Interactions from which an item's own CF vector is used alone.
    language, labels
        Of reasons: the language, and what each aspect is called in it.
    item_model, item_model_every, item_model_items
        Keep closed-form item-to-item weights pulled towards the items' texts (`model.ease.EASE`,
        a signal of the ranker), fit again from every user's takes after 100, 200, 400, ...
        events and then every `item_model_every`, over the `item_model_items` most taken items.
    centre_text
        Compare text vectors centred on the catalog's mean (`model.text_space.TextSpace`).
    projection, projection_refresh
        Learn a linear map of the encoder's space from the items users take one after another
        (`model.projection.TextProjection`): ranking, candidates by text and generated CF vectors
        read the projected vectors; every `projection_refresh` steps the items are projected again.
    ranker_params
        Passed to `HybridRanker`.

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

    def __init__(
        self,
        text_dim: int,
        cf_dim: int,
        profiles: MutableMapping[str, UserProfile] | None = None,
        half_life_s: float = 90 * 86_400.0,
        max_seen: int | None = 2_000,
        opinions: bool | Iterable[str] = True,
        negative_below: float = -0.3,
        content_cf: bool = True,
        content_full_takes: float = 10.0,
        language: str = "en",
        labels: Mapping[str, str] | None = None,
        rules: Rules | None = None,
        modalities: Mapping[str, int] | None = None,
        item_model: bool = True,
        item_model_every: int = 1_000,
        item_model_items: int = 1_000,
        centre_text: bool = True,
        projection: bool = False,
        projection_refresh: int = 4,
        **ranker_params: float,
    ) -> None:
        self.text_dim = text_dim
        self.cf_dim = cf_dim
        self.half_life_s = half_life_s
        self.max_seen = max_seen
        #: Vectors of other modalities items may carry (producer-supplied), by name: dimension.
        self.modalities = dict(modalities or {})
        spaces: dict[str, tuple[int, Metric]] = {"text": (text_dim, "cosine"), "cf": (cf_dim, "dot")}
        spaces.update({name: (dim, "cosine") for name, dim in self.modalities.items()})
        self.index = MemoryIndex(spaces)
        self.popularity = Popularity(half_life_s=half_life_s)
        self.cooccurrence = CoOccurrence()
        self.item_texts = ItemTexts()
        self.profiles: MutableMapping[str, UserProfile] = profiles if profiles is not None else {}
        self.user_cf: dict[str, FloatArray] = {}
        #: The parts of reading reviews as opinions that are on.
        self.opinions = parts_of(opinions)
        self.negative_below = negative_below
        self.reputation = Reputation()
        #: Interactions per item (clicks and reviews, wanted or not) seen by this recommender.
        self.takes: dict[str, int] = {}
        #: How often users take what they were shown: the prior of each one's attention.
        self.habits = Habits()
        #: When each item became known (catalog entry or first take, event time).
        self.born: dict[str, float] = {}
        #: Each user's events counted in popularity, co-occurrence and `takes`, to take back.
        self.contributions = Contributions()
        #: Items by tag, from the catalog.
        self.tagged: dict[str, set[str]] = {}
        #: The index's CF vectors: learned, blended with those content predicts for young items.
        self.generated = GeneratedCF(
            self.index,
            self.modalities,
            cf_dim,
            self.takes_of,
            full_takes=content_full_takes if content_cf else None,
        )
        #: The encoder whose text vectors serve, and a new one's gathered to replace them.
        self.versions = TextVersions()
        self.ranker = HybridRanker(
            self.index,
            self.popularity,
            cooccurrence=self.cooccurrence,
            reputation=self.reputation if "aspects" in self.opinions else None,
            wording=Wording(language),
            labels=labels,
            **ranker_params,  # type: ignore[arg-type]
        )
        self.ranker.tagged = self.tagged
        self.ranker.habits = self.habits
        self.ranker.born = self.born
        #: The text vectors of the items nobody took yet: a source of candidates of their own.
        self.fresh = self.ranker.fresh = MemoryIndex({"text": (text_dim, "cosine")})
        #: The space text vectors are compared in: centred on the catalog, and projected by what
        #: users take one after another where a projection is learned.
        learned = TextProjection(text_dim) if projection else None
        self.space = TextSpace(text_dim, centre_text, learned, refresh=projection_refresh)
        self.ranker.project = None if self.space.identity else self._project_one
        #: Items whose text vector in the index moved in a re-projection, for a view to follow.
        self.text_moved: set[str] = set()
        self.ranker.modalities = tuple(self.modalities)
        if rules is not None:
            self.ranker.rules = rules
        self.item_model_every = item_model_every
        if item_model:
            self.ranker.item_model = EASE(max_items=item_model_items)
        #: Events counted since the item model was last fit.
        self._since_fit = 0

    # -- state that is not in profiles ----------------------------------------------

    def aggregates(self) -> dict[str, Any]:
        """The counts this recommender keeps across users; a worker checkpoints them."""
        return {
            "popularity": self.popularity,
            "cooccurrence": self.cooccurrence,
            "takes": self.takes,
            "contributions": self.contributions,
            "habits": self.habits,
            "born": self.born,
            "blend": self.ranker.blend,
        }

    def restore_aggregates(self, saved: Mapping[str, Any]) -> None:
        """Take checkpointed counts (from `aggregates`), for this recommender and its ranker."""
        if "popularity" in saved:
            self.popularity = self.ranker.popularity = saved["popularity"]
        if "cooccurrence" in saved:
            self.cooccurrence = self.ranker.cooccurrence = saved["cooccurrence"]
        if "takes" in saved:
            self.takes = saved["takes"]
        if "contributions" in saved:
            self.contributions = saved["contributions"]
        if "habits" in saved:
            self.habits = self.ranker.habits = saved["habits"]
        if "born" in saved:
            self.born = self.ranker.born = saved["born"]
        if "blend" in saved and saved["blend"].signals == self.ranker.blend.signals:
            # The weights the stream taught, kept across restarts; a blend of other signals (another
            # version's) is left for the prior.
            saved["blend"].on = self.ranker.blend.on
            self.ranker.blend = saved["blend"]

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

    # -- encoder versions -------------------------------------------------------------

    def text_route(self, version: str, vector: FloatArray) -> Route:
        """Where a text vector of encoder `version` goes (`TextVersions.route`); the first
        versioned vectors set the dimension of the text space."""
        dim = len(vector)
        adopting = bool(version) and not self.versions.active
        route = self.versions.route(version, dim)
        if adopting and dim != self.text_dim:
            self._text_space(dim)
        return route

    def text_state(self) -> dict[str, Any]:
        """Which encoder serves, and which are retired (a worker checkpoints it: after a restart, old
        vectors still on the topics before compaction are passed over, not served again)."""
        versions = self.versions
        return {"active": versions.active, "retired": sorted(versions.retired), "dim": self.text_dim}

    def restore_text_state(self, saved: Mapping[str, Any]) -> None:
        """Take a checkpointed `text_state`, before any vector arrives."""
        if saved.get("active"):
            self.versions.active = str(saved["active"])
            self.versions.retired = set(saved.get("retired", ()))
            if int(saved.get("dim", self.text_dim)) != self.text_dim:
                self._text_space(int(saved["dim"]))

    def stage_review(self, key: bytes, item_id: str, rating: float | None, vector: FloatArray) -> None:
        """A review as the staged encoder read it, for the item vectors of the switch."""
        assert self.versions.staged is not None
        self.versions.staged.reviews[key] = (item_id, rating, np.asarray(vector, dtype=np.float32))

    def switch_text(self, version: str) -> tuple[StagedText, list[str]]:
        """Serve the staged encoder's vectors from now on, in place of the active one's: item text
        vectors rebuilt from its catalog and review vectors, the content map learned again in its
        space, profiles moved to it as they are next read. What was staged, and the items left
        without a text vector (the new encoder read nothing of them)."""
        staged = self.versions.switch(version)
        before = set(self.item_texts.items())
        texts = ItemTexts(self.item_texts.catalog_weight, self.item_texts.max_reviews)
        for item, vector in staged.catalog.items():
            texts.set_catalog(item, vector)
        for item, rating, vector in staged.reviews.values():
            texts.add_review(item, vector, rating_weight(rating))
        self.item_texts = texts
        self._text_space(staged.dim)
        ids = texts.items()
        if ids:
            self._index_text(ids, np.stack([texts.vector(i) for i in ids]))
        self.generated.relearn(ids)
        return staged, sorted(before.difference(ids))

    def _text_space(self, dim: int) -> None:
        """An empty text space of `dim` numbers, and a content map that reads it."""
        self.index.replace_space("text", dim)
        self.fresh = self.ranker.fresh = MemoryIndex({"text": (dim, "cosine")})
        self.space = TextSpace(
            dim, self.space.centre, TextProjection(dim) if self.space.projection is not None else None
        )
        self.text_dim = dim
        self.generated.restart(dim)

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

    # -- reviews as opinions ----------------------------------------------------------

    def is_negative(self, rating: float | None, polarity: float | None) -> bool:
        """A rating of 1-2 is; a 3 or no rating is when the text reads negative."""
        label = rating_label(rating)
        if label is not None:
            return label == 0
        return polarity is not None and polarity < self.negative_below

    def on_item_review(
        self,
        item_id: str,
        vector: FloatArray | None,
        rating: float | None = None,
        key: bytes = b"",
        opinions: Sequence[Opinion] = (),
        author: str = "",
    ) -> None:
        """What a reviewer wrote also describes the item (`vector`, in the active encoder's space;
        None: it is in no space that serves), and tells of its aspects."""
        if vector is not None:
            self.fold_review_text(item_id, vector, rating)
        self.popularity.add(item_id)
        if "aspects" in self.opinions and opinions:
            self.reputation.add(key, item_id, opinions, author)

    def fold_review_text(self, item_id: str, vector: FloatArray, rating: float | None = None) -> None:
        """A review's vector into its item's text vector."""
        folded = self.item_texts.add_review(item_id, vector, rating_weight(rating))
        self._index_text([item_id], folded[None, :])
        self.generated.content_changed(item_id)

    def on_item_review_removed(
        self, item_id: str, vector: FloatArray | None, rating: float | None = None, key: bytes = b""
    ) -> None:
        """Take back what a (forgotten) reviewer wrote about the item."""
        self.reputation.remove(key)
        if self.versions.staged is not None:
            self.versions.staged.reviews.pop(key, None)
        if vector is None:
            return
        folded = self.item_texts.remove_review(item_id, vector, rating_weight(rating))
        if folded is not None:
            self._index_text([item_id], folded[None, :])

    def on_item_cf(self, item_ids: Sequence[str], vectors: FloatArray) -> None:
        """Items' CF vectors as CF learned them; they teach the content map, and go to the index."""
        self.generated.learned(item_ids, vectors)

    @property
    def content_cf(self) -> ContentToCF | None:
        """The map from an item's content to its CF vector (None: off)."""
        return self.generated.content

    @property
    def cf_moved(self) -> set[str]:
        """Items whose CF vector in the index moved in a refit of the content map, for a view to follow."""
        return self.generated.moved

    def takes_of(self, item_id: str) -> int:
        """Interactions with an item seen by this recommender."""
        return self.takes.get(item_id, 0)

    def _count(self, user_id: str, item_id: str, ts: float, weight: float) -> None:
        """Count a user's event in the aggregates: a take, and with `weight` > 0 a pair with their
        latest items and popularity; kept as their contribution."""
        self.takes[item_id] = self.takes.get(item_id, 0) + 1
        self.born.setdefault(item_id, ts)
        self.generated.took(item_id)
        if self.takes[item_id] == 1:
            self.fresh.delete([item_id])
        if weight > 0:
            self._pair(user_id, item_id)
            recent = self.contributions.recent(user_id, self.cooccurrence.window, leaving=item_id)
            self.cooccurrence.learn_one(recent, item_id)
            self.popularity.learn_one(item_id, ts, weight)
        self.contributions.record(user_id, item_id, ts, weight)
        self._since_fit += 1
        if self.ranker.item_model is not None and self._since_fit >= self._fit_gap():
            self.fit_item_model()

    def _fit_gap(self) -> int:
        """Events between fits of the item model: doubling from 100 up to `item_model_every`."""
        model = self.ranker.item_model
        n = model.n_fits if model is not None else 0
        return int(min(self.item_model_every, 100 * 2**n))

    def fit_item_model(self) -> None:
        """Fit the item model again from every user's liked takes and the items' text vectors."""
        model = self.ranker.item_model
        if model is None:
            return
        self._since_fit = 0
        baskets = self.contributions.liked()
        ids = self.item_texts.items()
        texts = self.index.get("text", ids) if ids else {}
        model.fit(baskets, texts)

    def _learn(self, user_id: str, item_id: str, liked: bool) -> None:
        """The ranker's blend learns a take (or a pan) against the user's last list, before the take
        changes anything."""
        if self.ranker.learn_blend and user_id in self.ranker.ranked:
            self.ranker.learn(self.request(user_id), item_id, liked)

    def _took(self, from_list: bool | None) -> None:
        """A user took something after an impression: counted in every user's habits."""
        if from_list is not None:
            self.habits.took(from_list)

    def _uncount(self, user_id: str, profile: UserProfile | None) -> None:
        """Take every event of a user back out of the aggregates (`_count` in reverse); a user
        counted before contributions were kept is taken back as far as their profile reaches."""
        if user_id in self.contributions:
            takes = self.contributions.pop(user_id)
        elif profile is not None:
            takes = [
                (item, ts, 0.0 if action in NEGATIVE_ACTIONS else ACTION_WEIGHTS.get(action, 1.0))
                for item, ts, action in profile.history
            ]
        else:
            return
        for item_id, ts, weight, recent in Contributions.replay(takes, self.cooccurrence.window):
            if self.takes.get(item_id, 0) > 0:
                self.takes[item_id] -= 1
            if weight > 0:
                self.cooccurrence.unlearn_one(recent, item_id)
                self.popularity.unlearn(item_id, weight, ts)

    def on_user_cf(self, user_ids: Sequence[str], vectors: FloatArray) -> None:
        for user, vector in zip(user_ids, vectors, strict=True):
            self.user_cf[user] = np.asarray(vector, dtype=np.float32)

    def item_text(self, item_id: str) -> FloatArray | None:
        """An item's text vector in the encoder's own space (what profiles gather), or None."""
        return self.item_texts.vector(item_id) if item_id in self.item_texts else None

    def _index_text(self, ids: Sequence[str], vectors: FloatArray, remapping: bool = False) -> None:
        """Items' text vectors (the encoder's) into the index, mapped into the ranker's space
        (`TextSpace`: centred on the catalog, projected where a projection is learned), and into
        the fresh items' index for those nobody took yet."""
        space = self.space
        if not remapping:
            for vector in vectors:
                space.add(None, vector)
            if space.stale():
                # The space moved (its mean, or its projection): every item is mapped again.
                self.reproject()
        placed = space.map(vectors)
        self.index.upsert("text", ids, placed)
        fresh = [n for n, item in enumerate(ids) if self.takes_of(item) == 0]
        if fresh:
            self.fresh.upsert("text", [ids[n] for n in fresh], placed[fresh])

    def _project_one(self, vector: FloatArray) -> FloatArray:
        """A user's vector (the encoder's space) in the ranker's space."""
        mapped: FloatArray = self.space.map(np.asarray(vector)[None, :])[0]
        return mapped

    def _pair(self, user_id: str, item_id: str) -> None:
        """The projection learns from the user's previous liked item and this one; every
        `projection_refresh` steps the index's text vectors are projected again."""
        projection = self.space.projection
        if projection is None:
            return
        before = self.contributions.recent(user_id, 1, leaving=item_id)
        previous = self.item_text(before[0]) if before else None
        taken = self.item_text(item_id)
        if previous is None or taken is None:
            return
        space = self.space
        if projection.observe(previous - space.mean, taken - space.mean) and space.stale():
            self.reproject()

    def reproject(self) -> None:
        """Every item's text vector projected again (after the projection learned), and the content
        map learned again in the moved space; the items whose vectors moved, for a view to follow."""
        projected = self.space.projection is not None
        self.space.remap()
        ids = self.item_texts.items()
        if not ids:
            return
        self._index_text(ids, np.stack([self.item_texts.vector(i) for i in ids]), remapping=True)
        if projected:
            # A projection turns the space: the content map learns it again. Centring only shifts
            # it, which the map's intercept takes up; young items' generated vectors follow.
            self.generated.relearn(ids)
        else:
            for item in ids:
                self.generated.content_changed(item)
        self.text_moved.update(ids)

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

    def forget(self, user_id: str) -> bool:
        """Erase a user: profile, CF vector, and every event of theirs in popularity, co-occurrence
        and take counts."""
        profile = self.profiles.pop(user_id, None)
        found = self.user_cf.pop(user_id, None) is not None or profile is not None
        found = user_id in self.contributions or found
        self._uncount(user_id, profile)
        if profile is not None:
            self.habits.untake(*profile.list_takes)
        if found and self.ranker.item_model is not None and self.ranker.item_model.fitted:
            # The item-to-item weights are learned from every user's takes: learned again without theirs.
            self.fit_item_model()
        return found

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
