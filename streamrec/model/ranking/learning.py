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
        A user's candidates are scored once however many of them their takes share (a user's
        takes come in bursts), then standardized per take over its own candidates, as `learn`
        would score them alone.

        Call it before the batch changes any state: each take is then learned against its
        candidates as they stood before the batch (a user ranked once per batch has one list to
        learn against anyway). `learn` uses what is prepared, once; `unprepare` drops what a
        batch did not use. How many takes were prepared."""
        per_user: dict[str, tuple[Request, dict[str, list[int]]]] = {}
        for request, item in takes:
            rows = self._against(request, item)
            if rows is not None:
                per_user.setdefault(request.user, (request, {}))[1][item] = rows
        if not per_user:
            return 0
        # Per user, the candidates any of their takes is learned against, scored once.
        unions = {
            user: sorted({j for rows in chosen.values() for j in rows})
            for user, (_, chosen) in per_user.items()
        }
        lists = [[self.ranked[user][j] for j in unions[user]] for user in per_user]
        raw = self._raw_many([request for request, _ in per_user.values()], lists)
        picked, sizes, keys = [], [], []
        for u, (user, (_, chosen)) in enumerate(per_user.items()):
            at = {j: int(raw.bounds[u]) + n for n, j in enumerate(unions[user])}
            for item, rows in chosen.items():
                picked += [at[j] for j in rows]
                sizes.append(len(rows))
                keys.append((user, item))
        rows_ = np.array(picked, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        features = self._features(raw, bounds, self._age(raw.flat), rows_)
        for n, key in enumerate(keys):
            self._prepared[key] = (features[bounds[n] : bounds[n + 1]], sizes[n] - 1)
        return len(keys)

    def unprepare(self) -> None:
        self._prepared.clear()

    def _against(self, request: Request, item: str) -> list[int] | None:
        """Where, in the list last ranked for the user, the candidates a take of `item` is
        learned against are, the taken item last; None if it teaches nothing.

        The best `_REMEMBERED_BEST` of the list and as many drawn from the rest, seeded by the
        user and the item."""
        if not self.learn_blend or not request.user:
            return None
        candidates = self.ranked.get(request.user)
        if not candidates or item not in candidates:
            return None
        taken = candidates.index(item)
        others = [j for j in range(len(candidates)) if j != taken]
        if len(others) > _REMEMBERED_BEST + _REMEMBERED_DRAWN:
            rest = others[_REMEMBERED_BEST:]
            drawn = random.Random(f"{request.user}/{item}").sample(rest, _REMEMBERED_DRAWN)
            others = others[:_REMEMBERED_BEST] + drawn
        return [*others, taken] if others else None

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
        if prepared is None:
            candidates = self.ranked.get(request.user)
            if not candidates or item not in candidates:
                self.blend.n_outside += 1
                return False
            rows = self._against(request, item)
            if rows is None:
                return False
            prepared = self._blend(request, [candidates[j] for j in rows]).features, len(rows) - 1
        features, n_others = prepared
        self.blend.learn(features, n_others, liked)
        return True
