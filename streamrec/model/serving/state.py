"""The recommender's state: what it is built with, and the counts it keeps across users."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.cf.content import ContentToCF
from streamrec.model.cf.ease import EASE, Weights
from streamrec.model.cf.generated import GeneratedCF
from streamrec.model.index import MemoryIndex, Metric
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.ranker import HybridRanker
from streamrec.model.ranking.rules import Rules
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.text.opinion_parts import parts_of
from streamrec.model.text.projection import TextProjection
from streamrec.model.text.reputation import Reputation
from streamrec.model.text.space import TextSpace
from streamrec.model.text.versions import TextVersions
from streamrec.model.text.wording import Wording
from streamrec.model.users.contributions import Contributions
from streamrec.model.users.exposure import Habits
from streamrec.model.users.profile import UserProfile

__all__ = ["RecommenderState"]


class RecommenderState:
    """What a recommender holds: items, users, the ranker, and the counts it keeps across users.

    Parameters
    ----------
    text_dim
        Dimension of the encoder's vectors (the first versioned vectors to arrive may change it).
    cf_dim
        Dimension of CF retrieval vectors (`vector_size(n_factors)`).
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
        #: Where the item model's periodic fits run. None: on the caller's thread, the event
        #: waiting. A worker hands them elsewhere: `fit_elsewhere(solve, install)` runs `solve`
        #: (on a snapshot of this state) and calls `install` with its result (None if it failed)
        #: on the caller's thread, once; events go on meanwhile.
        self.fit_elsewhere: Callable[[Callable[[], Any], Callable[[Any], None]], None] | None = None
        #: Fits begun elsewhere and not installed yet; a fit here makes them stale.
        self._fits_begun = 0
        self._fitting: int | None = None

    # -- state that is not in profiles ----------------------------------------------

    def aggregates(self) -> dict[str, Any]:
        """The counts this recommender keeps across users; a worker checkpoints them."""
        return {
            "popularity": self.popularity,
            "cooccurrence": self.cooccurrence,
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
        if "takes" in saved:  # a checkpoint written when takes were counted apart
            self.popularity.restore_takes(saved["takes"])
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

    def takes_of(self, item_id: str) -> int:
        """Interactions with an item seen by this recommender, liked or not."""
        return self.popularity.takes(item_id)

    @property
    def content_cf(self) -> ContentToCF | None:
        """The map from an item's content to its CF vector (None: off)."""
        return self.generated.content

    @property
    def cf_moved(self) -> set[str]:
        """Items whose CF vector in the index moved in a refit of the content map, for a view to follow."""
        return self.generated.moved

    # -- the item model -------------------------------------------------------------

    def _fit_gap(self) -> int:
        """Events between fits of the item model: doubling from 100 up to `item_model_every`."""
        model = self.ranker.item_model
        n = model.n_fits if model is not None else 0
        return int(min(self.item_model_every, 100 * 2**n))

    def fit_item_model(self) -> None:
        """Fit the item model again from every user's liked takes and the items' text vectors,
        here and now (a fit begun elsewhere before it is not installed)."""
        model = self.ranker.item_model
        if model is None:
            return
        self._begin_fit()
        model.fit(*self._fit_inputs())

    def _begin_fit(self) -> int:
        """A fit begins: events count from here, and any fit begun before it is stale."""
        self._since_fit = 0
        self._fits_begun += 1
        return self._fits_begun

    def _fit_when_due(self) -> None:
        """Fit the item model if enough events came since the last fit (elsewhere, where the
        recommender is given somewhere, and one at a time)."""
        model = self.ranker.item_model
        if model is None or self._since_fit < self._fit_gap() or self._fitting is not None:
            return
        if self.fit_elsewhere is None:
            self.fit_item_model()
            return
        self._fitting = begun = self._begin_fit()

        def install(weights: Weights | None) -> None:
            self._fitting = None
            if begun == self._fits_begun:  # no fit here since, with fresher data (or without a user)
                model.install(weights)

        self.fit_elsewhere(lambda: model.solve(*self._fit_inputs()), install)

    def _fit_inputs(self) -> tuple[list[list[str]], dict[str, FloatArray]]:
        """Every user's liked takes, and the items' text vectors."""
        ids = self.item_texts.items()
        return self.contributions.liked(), self.index.get("text", ids) if ids else {}

    # -- the ranker's text space ----------------------------------------------------

    # Here rather than with `TextVectors`: the ranker is handed it at construction.
    def _project_one(self, vector: FloatArray) -> FloatArray:
        """A user's vector (the encoder's space) in the ranker's space."""
        mapped: FloatArray = self.space.map(np.asarray(vector)[None, :])[0]
        return mapped
