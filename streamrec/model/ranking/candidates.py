"""The ranker's candidates: what its sources find for each user, before any is scored."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter

import numpy as np

from streamrec.model.base import FloatArray, VectorIndex
from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.request import Request
from streamrec.model.ranking.rules import Rules

__all__ = ["CandidateSearch"]


class CandidateSearch:
    """The part of `HybridRanker` that finds candidates: batched searches per vector space, the
    items that followed the user's recent ones, the popular items with a request's tags, and
    what the rules allow of them.

    A mixin: the attributes below are the ranker's (see its parameters); it sets them.
    """

    index: MemoryIndex
    searcher: VectorIndex
    popularity: Popularity
    cooccurrence: CoOccurrence | None
    rules: Rules
    tagged: Mapping[str, set[str]]
    fresh: MemoryIndex | None
    n_candidates: int
    n_recent: int
    n_fresh: int

    def _gather(
        self,
        request: Request,
        text_hits: list[tuple[str, float]],
        cf_hits: list[tuple[str, float]],
        popular: list[tuple[str, float]],
        recent: list[tuple[str, float, str]],
    ) -> list[str]:
        """The candidates for one request, from every source, that the list may hold."""
        exclude, hidden = request.exclude, self.index.hidden
        neighbors: list[tuple[str, float]] = []
        if self.cooccurrence is not None and recent:
            neighbors = self.cooccurrence.neighbors([i for i, _, _ in recent], self.n_candidates)
        # Each item once, in the order the sources find them.
        found = chain(text_hits, cf_hits, popular, neighbors)
        candidates: dict[str, None] = dict.fromkeys(map(itemgetter(0), found))
        rules = self.rules
        required = request.tags or frozenset(rules.require_tags)
        if required:
            # The other sources know nothing of tags: the most popular items that have them.
            pool = set().union(*(self.tagged.get(t, ()) for t in required)) - exclude - hidden
            tagged = heapq.nlargest(self.n_candidates, pool, key=self.popularity.count)
            candidates.update(dict.fromkeys(tagged))
        # Items off sale are out of every source (a search served by Qdrant may trail by a flush).
        ids = [i for i in candidates if i not in exclude and i not in hidden]
        if not rules.empty or request.tags:
            ids = [i for i in ids if rules.allows(i, self._tags(i), request.tags)]
        return ids

    def _tags(self, item: str) -> list[str]:
        tags: list[str] = self.index.payload(item).get("tags") or []
        return tags

    def _search_latest(self, requests: Sequence[Request]) -> list[list[tuple[str, float]]]:
        """Per request, the items nearest (text) each of the user's `n_recent` latest items, as many
        per item as make `n_candidates` in all, searched in one batch."""
        owners: list[int] = []
        vectors: list[FloatArray] = []
        for n, request in enumerate(requests):
            if request.profile is None:
                continue
            latest = [i for i, _, _ in request.profile.recent_items(self.n_recent)]
            stacked, has = self.index.stack("text", latest)
            for vector in stacked[has]:
                owners.append(n)
                vectors.append(vector)
        out: list[list[tuple[str, float]]] = [[] for _ in requests]
        if not vectors:
            return out
        per = max(1, self.n_candidates // self.n_recent)
        hits = self.searcher.search_many(
            "text", np.stack(vectors), per, [requests[n].exclude for n in owners]
        )
        for n, found in zip(owners, hits, strict=True):
            out[n].extend(found)
        return out

    def _search_fresh(
        self, requests: Sequence[Request], queries: list[FloatArray | None]
    ) -> list[list[tuple[str, float]]]:
        """Per request, the `n_fresh` items nobody took yet nearest its text vector (`queries`)."""
        assert self.fresh is not None
        out: list[list[tuple[str, float]]] = [[] for _ in requests]
        asked = [i for i, q in enumerate(queries) if q is not None]
        if asked:
            matrix = np.stack([queries[i] for i in asked])  # type: ignore[misc]
            excludes = [requests[i].exclude | self.index.hidden for i in asked]
            hits = self.fresh.search_many("text", matrix, self.n_fresh, excludes)
            for i, h in zip(asked, hits, strict=True):
                out[i] = h
        return out

    def _recent_mean(self, request: Request, name: str) -> FloatArray | None:
        if request.profile is None:
            return None
        recent = [i for i, _, _ in request.profile.recent_items(self.n_recent)]
        vectors, has = self.index.stack(name, recent)
        if not has.any():
            return None
        mean: FloatArray = vectors[has].mean(axis=0)
        return mean

    def _search(
        self, name: str, queries: list[FloatArray | None], excludes: list[set[str]]
    ) -> list[list[tuple[str, float]]]:
        out: list[list[tuple[str, float]]] = [[] for _ in queries]
        asked = [i for i, q in enumerate(queries) if q is not None]
        if asked:
            matrix = np.stack([queries[i] for i in asked])  # type: ignore[misc]
            hits = self.searcher.search_many(name, matrix, self.n_candidates, [excludes[i] for i in asked])
            for i, h in zip(asked, hits, strict=True):
                out[i] = h
        return out
