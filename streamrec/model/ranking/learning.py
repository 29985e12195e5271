"""The ranker's learning: the candidates remembered per user, and the blend learned from takes."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from streamrec.model.base import DoubleArray
from streamrec.model.ranking.request import Request
from streamrec.model.ranking.signals import SignalScoring

__all__ = ["BlendLearning"]

#: Users whose last candidates are remembered; a take among them is learned against the best
#: of them by relevance (what the user was likeliest to take) and as many drawn from the rest.
_REMEMBERED_USERS = 20_000
_REMEMBERED_BEST, _REMEMBERED_DRAWN = 50, 100


class BlendLearning(SignalScoring):
    """The part of `HybridRanker` that learns its blend from what users take among the candidates
    last ranked for them (scored again, as they were before the take).

    A mixin: the attributes below are the ranker's (see its parameters); it sets them.
    """

    learn_blend: bool
    ranked: OrderedDict[str, list[str]]
    #: Features of takes scored ahead, by (user, item taken): see `prepare`.
    _prepared: dict[tuple[str, str], tuple[DoubleArray, int]]

    def remember(self, user: str, ids: Sequence[str], relevance: DoubleArray | None = None) -> None:
        """Keep the candidates ranked (best first, by `relevance`) or shown to `user`: what their
        next take is learned against."""
        if relevance is not None:
            ids = [ids[j] for j in np.argsort(-relevance, kind="stable")]
        self.ranked[user] = list(ids)
        self.ranked.move_to_end(user)
        while len(self.ranked) > _REMEMBERED_USERS:
            self.ranked.popitem(last=False)

    def prepare(self, takes: Sequence[tuple[Request, str]]) -> int:
        """Score at once the candidates each of a batch's takes will be learned against: one
        matrix for the batch instead of one call a take, which costs most of a take's learning.

        Call it before the batch changes any state: each take is then learned against its
        candidates as they stood before the batch (a user ranked once per batch has one list to
        learn against anyway). `learn` uses what is prepared, once; `unprepare` drops what a
        batch did not use. How many takes were prepared."""
        learnable = [(r, item, others) for r, item in takes if (others := self._against(r, item))]
        if not learnable:
            return 0
        blends = self._blend_many([r for r, _, _ in learnable], [[*o, i] for _, i, o in learnable])
        for (r, item, others), b in zip(learnable, blends, strict=True):
            self._prepared[(r.user, item)] = (b.features, len(others))
        return len(learnable)

    def unprepare(self) -> None:
        self._prepared.clear()

    def _against(self, request: Request, item: str) -> list[str] | None:
        """The candidates a take of `item` is learned against, or None if it teaches nothing.

        The best `_REMEMBERED_BEST` of the list last ranked for the user and as many drawn from
        the rest, seeded by the user and the item."""
        if not self.learn_blend or not request.user:
            return None
        candidates = self.ranked.get(request.user)
        if not candidates or item not in candidates:
            return None
        others = [i for i in candidates if i != item]
        if len(others) > _REMEMBERED_BEST + _REMEMBERED_DRAWN:
            rest = others[_REMEMBERED_BEST:]
            drawn = random.Random(f"{request.user}/{item}").sample(rest, _REMEMBERED_DRAWN)
            others = others[:_REMEMBERED_BEST] + drawn
        return others or None

    def learn(self, request: Request, item: str, liked: bool = True) -> bool:
        """The user took `item` (`liked`; or took it and panned it): if it was among the candidates
        last ranked for (or shown to) them, the blend learns it against them, as they were ranked
        before the take (call it before the take changes any state; or `prepare` the batch).
        Learning from a take outside the candidates would teach the blend what sets the rest of
        the catalog apart from what retrieval found, not what to rank first among what it found.
        False if nothing was learned."""
        if not self.learn_blend or not request.user:
            return False
        prepared = self._prepared.pop((request.user, item), None)
        if prepared is not None:
            features, n_others = prepared
        else:
            others = self._against(request, item)
            if others is None:
                candidates = self.ranked.get(request.user)
                if not candidates or item not in candidates:
                    self.blend.n_outside += 1
                return False
            features, n_others = self._blend(request, [*others, item]).features, len(others)
        self.blend.learn(features, n_others, liked)
        return True
