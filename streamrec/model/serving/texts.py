"""The recommender's text vectors: which encoder serves, the space they are compared in, the index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.index import MemoryIndex
from streamrec.model.serving.state import RecommenderState
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.text.projection import TextProjection
from streamrec.model.text.space import TextSpace
from streamrec.model.text.versions import Route, StagedText
from streamrec.model.users.profile import rating_weight

__all__ = ["TextVectors"]


class TextVectors(RecommenderState):
    """Items' text vectors kept in the index: by the encoder that serves, in the ranker's space."""

    # -- encoder versions -----------------------------------------------------------

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

    # -- the index's text vectors ---------------------------------------------------

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
