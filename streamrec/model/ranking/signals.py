"""The ranker's signals: each candidate's evidence, standardized and blended into its relevance."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt

from streamrec.model.base import DoubleArray, FloatArray
from streamrec.model.cf.ease import EASE
from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.blend import LearnedBlend, evidence
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.request import Request
from streamrec.model.text.reputation import Reputation
from streamrec.model.users import exposure
from streamrec.model.users.profile import NEGATIVE_ACTIONS, UserProfile

__all__ = ["RECENT", "SIGNALS", "Blended", "SignalScoring", "standardize"]

#: Recent interactions that explanations and item-to-item scores look back on (the defaults'
#: figures in docs/evaluation.md were measured with 4).
RECENT = 4

#: The ranker's signals, in the order of their columns (and of `Reasons.explain`'s contributions).
SIGNALS = ("text", "cf", "pop", "item", "recent", "dislike", "aspects", "looks", "ease")
_TEXT, _CF, _POP, _ITEM, _RECENT, _DISLIKE, _ASPECTS, _LOOKS, _EASE = range(len(SIGNALS))


def standardize(
    values: DoubleArray, valid: npt.NDArray[np.bool_], bounds: npt.NDArray[np.int64] | None = None
) -> DoubleArray:
    """Standardize each column over its valid entries; invalid ones get 0 (and a missing flag in
    the blend). With `bounds` (row offsets, first 0, last `len(values)`), each run of rows between
    two of them is standardized on its own: many users' candidates at once.

    >>> standardize(np.array([[1.0], [3.0], [9.0]]), np.array([[True], [True], [False]])).tolist()
    [[-1.0], [1.0], [0.0]]
    >>> two_users = np.array([0, 2, 4])
    >>> standardize(np.array([[1.0], [3.0], [5.0], [9.0]]), np.ones((4, 1), bool), two_users).tolist()
    [[-1.0], [1.0], [-1.0], [1.0]]
    """
    if bounds is None:
        bounds = np.array([0, len(values)])
    sizes = np.diff(bounds)
    groups = np.repeat(np.arange(len(sizes)), sizes)

    def per_group(column_values: DoubleArray) -> DoubleArray:
        # Sums over each run of rows, from cumulative sums (rows are in runs, in order).
        totals = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(column_values, axis=0)])
        out: DoubleArray = totals[bounds[1:]] - totals[bounds[:-1]]
        return out

    count = per_group(valid.astype(np.float64))
    safe = np.maximum(count, 1.0)
    mean = per_group(np.where(valid, values, 0.0)) / safe
    centred = np.where(valid, values - mean[groups], 0.0)
    std = np.sqrt(per_group(centred**2) / safe)
    usable = (count >= 2) & (std > 1e-9)
    scale = np.where(usable, 1.0 / np.where(usable, std, 1.0), 0.0)
    out: DoubleArray = centred * scale[groups]
    return out


@dataclass
class Blended:
    """Per-candidate signals and their blend, as the ranker computed them."""

    relevance: npt.NDArray[np.float64]
    contrib: npt.NDArray[np.float64]
    counts: npt.NDArray[np.float64]
    text_vecs: FloatArray
    has_text: npt.NDArray[np.bool_]
    cf_vecs: FloatArray
    #: Item-to-item strength from each recent item (rows) to each candidate (columns).
    pairs: npt.NDArray[np.float64]
    #: Text vectors of the user's recent items, and which of them have one.
    recent_vecs: FloatArray
    recent_has: npt.NDArray[np.bool_]
    #: Per candidate, the aspect the user cares about on which it stands best (if any).
    aspects: list[str | None]
    #: Per candidate, which recent item it looks most like in another modality (-1: none).
    like_look: npt.NDArray[np.int64]
    #: The blend's features, one row per candidate (what it learns from).
    features: DoubleArray


@dataclass
class Raw:
    """Every signal of many users' stacked candidates before standardizing: one row a candidate,
    user `u`'s rows `bounds[u]:bounds[u + 1]`. A row's values do not depend on the other rows."""

    flat: list[str]
    bounds: npt.NDArray[np.int64]
    values: DoubleArray
    valid: npt.NDArray[np.bool_]
    counts: DoubleArray
    n_user: DoubleArray
    text_vecs: FloatArray
    has_text: npt.NDArray[np.bool_]
    cf_vecs: FloatArray
    per_user: list[
        tuple[DoubleArray, FloatArray, npt.NDArray[np.bool_], list[str | None], npt.NDArray[np.int64]]
    ]


class SignalScoring:
    """The part of `HybridRanker` that scores candidates: every signal, standardized over the
    candidates and blended by its `LearnedBlend`.

    A mixin: the attributes below are the ranker's (see its parameters); it sets them.
    """

    index: MemoryIndex
    popularity: Popularity
    cooccurrence: CoOccurrence | None
    reputation: Reputation | None
    blend: LearnedBlend
    habits: exposure.Habits
    item_model: EASE | None
    project: Callable[[FloatArray], FloatArray] | None
    modalities: tuple[str, ...]
    born: Mapping[str, float]
    n_recent: int
    w_aspects: float
    w_looks: float
    w_ignored: float
    w_ease: float

    def _blend(self, request: Request, ids: list[str]) -> Blended:
        return self._blend_many([request], [ids])[0]

    def _blend_many(
        self,
        requests: Sequence[Request],
        candidates: Sequence[list[str]],
        recents: Sequence[list[tuple[str, float, str]]] | None = None,
        user_texts: Sequence[FloatArray | None] | None = None,
    ) -> list[Blended]:
        """Score each request's candidates: the users' candidates stacked into one matrix, each
        signal a column, standardized per user, blended in one product. `recents` and
        `user_texts` (each user's latest items, and text vector) where the caller has them."""
        raw = self._raw_many(requests, candidates, recents, user_texts)
        bounds, counts = raw.bounds, raw.counts
        text_vecs, has_text, cf_vecs, per_user = raw.text_vecs, raw.has_text, raw.cf_vecs, raw.per_user
        features = self._features(raw, bounds, self._age(raw.flat))
        relevance = self.blend.scores(features)
        contrib = self.blend.contributions(features)
        out = []
        for u, request in enumerate(requests):
            rows = slice(int(bounds[u]), int(bounds[u + 1]))
            profile = request.profile
            score = relevance[rows]
            if profile is not None and profile.shown and self.w_ignored:
                passed = np.array([profile.shown.get(i, 0) for i in candidates[u]], dtype=np.float64)
                exposure_evidence = exposure.passed_over(passed, self.habits.of(*profile.list_takes))
                spread = float(score.std()) if len(score) > 1 else 1.0
                score = score - self.w_ignored * exposure_evidence * (spread or 1.0)
            pairs, recent_vecs, recent_has, best, like_look = per_user[u]
            out.append(
                Blended(
                    score.copy(),
                    contrib[:, rows],
                    counts[rows],
                    text_vecs[rows],
                    has_text[rows],
                    cf_vecs[rows],
                    pairs,
                    recent_vecs,
                    recent_has,
                    best,
                    like_look,
                    features[rows],
                )
            )
        return out

    def _features(
        self,
        raw: Raw,
        bounds: npt.NDArray[np.int64],
        ages: DoubleArray,
        rows: npt.NDArray[np.int64] | None = None,
    ) -> DoubleArray:
        """The blend's features of `raw`'s `rows` (all by default), each run of them between two
        `bounds` standardized on its own; `ages` are the rows' items' (`_age`)."""
        values, valid, counts, n_user = raw.values, raw.valid, raw.counts, raw.n_user
        if rows is not None:
            values, valid, counts, n_user, ages = (
                values[rows],
                valid[rows],
                counts[rows],
                n_user[rows],
                ages[rows],
            )
        x = standardize(values, valid, bounds)
        # One-sided: items closer than most to what the user disliked sink; others keep their place.
        x[:, _DISLIKE] = np.maximum(x[:, _DISLIKE], 0.0)
        return self.blend.features(x, valid, evidence(n_user), evidence(counts), ages)

    def _raw_many(
        self,
        requests: Sequence[Request],
        candidates: Sequence[list[str]],
        recents: Sequence[list[tuple[str, float, str]]] | None = None,
        user_texts: Sequence[FloatArray | None] | None = None,
    ) -> Raw:
        """Every signal of each request's candidates, stacked (see `_blend_many`)."""
        sizes = [len(ids) for ids in candidates]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flat = [i for ids in candidates for i in ids]
        n = len(flat)
        item_rows = self.index.rows(flat)
        text_vecs, has_text = self.index.stack_rows("text", item_rows)
        cf_vecs, has_cf = self.index.stack_rows("cf", item_rows)
        raw = np.zeros((n, len(SIGNALS)))
        valid = np.zeros((n, len(SIGNALS)), dtype=bool)
        counts = self.popularity.counts(flat)
        taken = counts > 0
        # Nobody took it yet: its popularity is unknown, not low.
        raw[:, _POP] = self.popularity.scores(flat)
        valid[:, _POP] = taken
        if recents is None:
            recents = [self._recent(r) for r in requests]
        if user_texts is None:
            user_texts = [self._user_text(r.profile) for r in requests]
        n_user = np.zeros(n)
        co = self.cooccurrence
        co_slots = co.slots(flat) if co is not None else None
        per_user = []
        for u, (request, ids, recent, user_text) in enumerate(
            zip(requests, candidates, recents, user_texts, strict=True)
        ):
            rows = slice(int(bounds[u]), int(bounds[u + 1]))
            profile = request.profile
            n_user[rows] = profile.n_events if profile else 0
            texts, has = text_vecs[rows], has_text[rows]
            if user_text is not None:
                raw[rows, _TEXT] = texts @ user_text
                valid[rows, _TEXT] = has
            if request.cf_vector is not None:
                raw[rows, _CF] = cf_vecs[rows] @ request.cf_vector
                valid[rows, _CF] = has_cf[rows]
            pairs = np.zeros((0, len(ids)))
            if co is not None and co_slots is not None and recent:
                pairs = co.contributions([i for i, _, _ in recent], ids, co_slots[rows])
                raw[rows, _ITEM] = pairs.sum(axis=0)
                valid[rows, _ITEM] = taken[rows]
            recent_vecs, recent_has = self.index.stack("text", [i for i, _, _ in recent])
            last = recent_has[: self.n_recent]
            if last.any():
                raw[rows, _RECENT] = (texts @ recent_vecs[: self.n_recent][last].T).max(axis=1)
                valid[rows, _RECENT] = has
            disliked = profile.dislike_vector() if profile is not None else None
            if disliked is not None and self.project is not None:
                disliked = self.project(disliked)
            if disliked is not None:
                raw[rows, _DISLIKE] = texts @ disliked
                valid[rows, _DISLIKE] = has
            match, best, cared = self._aspect_match(profile, ids)
            raw[rows, _ASPECTS] = match
            valid[rows, _ASPECTS] = cared
            looks, like_look = self._looks(ids, recent)
            raw[rows, _LOOKS] = looks
            valid[rows, _LOOKS] = like_look >= 0
            per_user.append((pairs, recent_vecs, recent_has, best, like_look))
        if self.item_model is not None and self.w_ease:
            # Item-to-item weights from everything the user liked that the profile still holds.
            liked = [
                [i for i, _, action in r.profile.history if action not in NEGATIVE_ACTIONS]
                if r.profile is not None
                else []
                for r in requests
            ]
            raw[:, _EASE], valid[:, _EASE] = self.item_model.scores_many(liked, flat, bounds, text_vecs)
        return Raw(flat, bounds, raw, valid, counts, n_user, text_vecs, has_text, cf_vecs, per_user)

    @staticmethod
    def _recent(request: Request) -> list[tuple[str, float, str]]:
        """The user's `RECENT` latest items (none for a stranger)."""
        return request.profile.recent_items(RECENT) if request.profile is not None else []

    def _user_text(self, profile: UserProfile | None) -> FloatArray | None:
        """The user's text vector in the space the index holds (projected, where it is)."""
        vector = profile.text_vector() if profile is not None else None
        if vector is None or self.project is None:
            return vector
        return self.project(vector)

    def _age(self, ids: Sequence[str]) -> DoubleArray:
        """How long each item has been known, on the blend's evidence scale (days, `log1p`)."""
        if not self.born:
            return np.zeros(len(ids))
        now = self.popularity.t_last
        born = np.fromiter(map(self.born.get, ids, repeat(now)), dtype=np.float64, count=len(ids))
        days = np.maximum(0.0, now - born) / 86_400.0
        out: DoubleArray = evidence(days)
        return out

    def _looks(
        self, ids: list[str], recent: list[tuple[str, float, str]]
    ) -> tuple[DoubleArray, npt.NDArray[np.int64]]:
        """How much each candidate looks like the user's latest items, over the modalities it and
        they have vectors of (the closest), and which of those items it looks most like."""
        best = np.full(len(ids), -np.inf)
        like = np.full(len(ids), -1, dtype=np.int64)
        if not self.w_looks or not recent:
            return np.zeros(len(ids)), like
        latest = [i for i, _, _ in recent[: self.n_recent]]
        for name in self.modalities:
            vecs, has = self.index.stack(name, ids)
            mine, mine_has = self.index.stack(name, latest)
            if not has.any() or not mine_has.any():
                continue
            sims = np.where(mine_has[None, :], vecs @ mine.T, -np.inf).astype(np.float64)
            top = sims.max(axis=1)
            closer = has & (top > best)
            best = np.where(closer, top, best)
            like = np.where(closer, sims.argmax(axis=1), like)
        return np.where(like >= 0, best, 0.0), like

    def _aspect_match(
        self, profile: UserProfile | None, ids: list[str]
    ) -> tuple[DoubleArray, list[str | None], bool]:
        """How well each item stands on what the user cares about, the aspect that counts most, and
        whether the user cares about any."""
        cares = (
            profile.cares() if profile is not None and self.reputation is not None and self.w_aspects else {}
        )
        if not cares or self.reputation is None:
            return np.zeros(len(ids)), [None] * len(ids), False
        aspects = list(cares)
        weights = np.array([cares[a] for a in aspects])
        parts = self.reputation.standings(ids, aspects) * weights
        top = parts.argmax(axis=1)
        best = [aspects[j] if parts[i, j] > 0 else None for i, j in enumerate(top)]
        return parts.sum(axis=1), best, True
