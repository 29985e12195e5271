"""The hybrid ranker: candidates from text, CF and popularity, blended, diversified, explained."""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streamrec.model.base import DoubleArray, FloatArray, VectorIndex
from streamrec.model.cf.ease import EASE
from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.blend import LearnedBlend, evidence
from streamrec.model.ranking.diversity import mmr
from streamrec.model.ranking.popularity import CoOccurrence, Popularity
from streamrec.model.ranking.reasons import Reasons, Scored
from streamrec.model.ranking.rules import Rules, place_pins
from streamrec.model.text.reputation import Reputation
from streamrec.model.text.wording import Wording
from streamrec.model.users import exposure
from streamrec.model.users.profile import NEGATIVE_ACTIONS, UserProfile

__all__ = ["HybridRanker", "Request", "Scored"]


@dataclass
class Request:
    """What the ranker needs to know of one user."""

    profile: UserProfile | None = None
    cf_vector: FloatArray | None = None
    exclude: set[str] = field(default_factory=set)
    #: Only items with one of these tags (a request's filter, on top of the deployment's rules).
    tags: frozenset[str] = frozenset()
    #: Whose list it is: the candidates ranked are remembered under this name, to learn the blend
    #: from what the user takes next ("": not remembered).
    user: str = ""


#: Recent interactions that explanations and item-to-item scores look back on.
_RECENT = 20
#: Users whose last candidates are remembered; a take among them is learned against the best
#: of them by relevance (what the user was likeliest to take) and as many drawn from the rest.
_REMEMBERED_USERS = 20_000
_REMEMBERED_BEST, _REMEMBERED_DRAWN = 50, 100


#: The ranker's signals, in the order of their columns (and of `Reasons.explain`'s contributions).
SIGNALS = ("text", "cf", "pop", "item", "recent", "dislike", "aspects", "looks", "ease")
_TEXT, _CF, _POP, _ITEM, _RECENT, _DISLIKE, _ASPECTS, _LOOKS, _EASE = range(len(SIGNALS))


def _standardize(values: DoubleArray, valid: npt.NDArray[np.bool_]) -> DoubleArray:
    """Standardize each column over its valid entries; invalid ones get 0 (and a missing flag in
    the blend).

    >>> _standardize(np.array([[1.0], [3.0], [9.0]]), np.array([[True], [True], [False]])).tolist()
    [[-1.0], [1.0], [0.0]]
    """
    out = np.zeros_like(values)
    count = valid.sum(axis=0)
    safe = np.maximum(count, 1)
    mean = np.where(valid, values, 0.0).sum(axis=0) / safe
    centred = np.where(valid, values - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=0) / safe)
    usable = (count >= 2) & (std > 1e-9)
    out[:, usable] = centred[:, usable] / std[usable]
    return out


@dataclass
class _Blend:
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


class HybridRanker:
    """Recommends for a user by blending semantic similarity, CF and popularity.

    1. Candidates: the nearest items to the user's text vector and to their CF vector,
       and the currently popular items, minus what the user already interacted with.
    2. Each signal is standardized over the candidates that have evidence for it and
       blended by a `LearnedBlend`: weights crossed with how much is known of the user
       and of the item, a missing flag where a signal has no evidence, learned online
       from what each user takes among the candidates ranked for them (the weights
       below are its prior). Text carries new users and new items until CF knows them:
       an item with only a description is recommendable before its first click.
    3. Maximal marginal relevance picks the final list, trading relevance for
       dissimilarity to the items already picked.
    4. Each item gets reasons from the signals that lifted it.

    The same class ranks in the workers and in offline evaluation.

    Parameters
    ----------
    index
        Item vectors: `text` (cosine) and `cf` (dot, `[q_i, b_i]`), with `title` payloads.
    popularity
        Item interaction counts (all-time counts drive CF confidence; decayed counts
        are the popularity signal).
    n_candidates
        Candidates retrieved per source.
    w_text, w_cf, w_pop
        Prior weights of the standardized signals: similarity to the user's text profile,
        CF score (crossed with the user's and the item's evidence: it speaks once both are
        known), trending popularity. 0 turns a signal off.
    mmr_lambda
        1.0 ranks by relevance alone; lower values diversify more.
    cooccurrence
        Item-to-item counts; when given, items that followed the user's recent items in
        other users' histories are candidates and a signal (weight `w_item`).
    w_item
        Weight of the standardized item-to-item signal.
    w_recent, n_recent
        Weight of the similarity (text) to the closest of the user's `n_recent` latest
        items: the long-term profile says what a user likes, the latest items what they
        are shopping for now.
    reputation, w_aspects
        What reviewers say of items per aspect; weight of the match between what the user
        cares about (their profile's aspects) and the item's standing on those aspects.
    w_dislike
        Weight of the distance (text) from what the user disliked: items close to it sink.
    query_latest
        Also search the catalog by each of the user's `n_recent` latest items (not only by the
        mean of their history): what they are shopping for now.
    n_fresh
        Candidates drawn from the items nobody took yet, nearest the user's text profile.
    new_items
        Share of each list kept for items nobody took yet, the best of them among the candidates
        (0: none kept; they compete with the rest as the blend ranks them).
    w_ease
        Weight of the item-to-item weights learned in closed form from every user's takes and
        pulled towards what the items' texts say (`model.ease.EASE`, kept by the recommender):
        the sum of the weights from the items the user liked, an item nobody took scored by its
        text.
    w_ignored
        How far an item the user was shown and passed over sinks, in standard deviations of the
        candidates' relevance per nat of evidence against it (`model.exposure.passed_over`: it
        grows with each impression without a take, levels off, and is as strong as the user's
        habit of taking from what they are shown).
    wording, labels
        The language of reasons, and what each aspect is called in it.
    learn_blend, learning_rate
        Learn the blend from what users take (False: the prior weights as they are), and
        AdaGrad's step.
    title_of
        Looks up an item's title for reasons (default: the index payload's `title`).

    Examples
    --------
    >>> index = MemoryIndex({"text": (2, "cosine"), "cf": (2, "dot")})
    >>> index.upsert("text", ["rock", "jazz"], np.array([[1, 0], [0, 1]], dtype=np.float32),
    ...              [{"title": "Rock guitar"}, {"title": "Jazz sax"}])
    >>> index.upsert("text", ["metal"], np.array([[0.9, 0.1]], dtype=np.float32), [{"title": "Metal"}])
    >>> ranker = HybridRanker(index, Popularity())
    >>> profile = UserProfile("ann")
    >>> profile.observe("rock", ts=0.0, action="review", vector=np.array([1, 0], dtype=np.float32))
    >>> top = ranker.recommend(Request(profile, exclude=set(profile.seen)), k=2)
    >>> [s.item_id for s in top], top[0].reasons[0]
    (['metal', 'jazz'], "similar to 'Rock guitar' you reviewed")
    """

    def __init__(
        self,
        index: MemoryIndex,
        popularity: Popularity,
        n_candidates: int = 50,
        w_text: float = 0.5,
        w_cf: float = 0.5,
        w_pop: float = 0.75,
        mmr_lambda: float = 0.9,
        title_of: Callable[[str], str | None] | None = None,
        cooccurrence: CoOccurrence | None = None,
        w_item: float = 1.0,
        searcher: VectorIndex | None = None,
        w_recent: float = 0.5,
        n_recent: int = 3,
        reputation: Reputation | None = None,
        w_dislike: float = 0.5,
        w_aspects: float = 0.25,
        w_looks: float = 0.5,
        w_ignored: float = 1.0,
        w_ease: float = 0.5,
        n_fresh: int = 10,
        new_items: float = 0.0,
        query_latest: bool = False,
        wording: Wording | None = None,
        labels: Mapping[str, str] | None = None,
        learn_blend: bool = True,
        learning_rate: float = 0.05,
    ) -> None:
        self.index = index
        #: Where candidates are searched: the index itself, or e.g. a Qdrant server's HNSW.
        self.searcher = searcher if searcher is not None else index
        self.popularity = popularity
        self.n_candidates = n_candidates
        self.w_text = w_text
        self.w_cf = w_cf
        self.w_pop = w_pop
        self.mmr_lambda = mmr_lambda
        self.cooccurrence = cooccurrence
        self.w_item = w_item
        self.w_recent = w_recent
        self.n_recent = n_recent
        self.title_of = title_of
        self.reputation = reputation
        self.w_dislike = w_dislike
        self.w_aspects = w_aspects
        #: Weight of how much an item looks (sounds, ...) like the user's latest items, in the
        #: vectors of other modalities (`modalities`) producers send.
        self.w_looks = w_looks
        self.w_ignored = w_ignored
        self.w_ease = w_ease
        self.n_fresh = n_fresh
        self.query_latest = query_latest
        self.new_items = new_items
        #: The text vectors of the items nobody took yet (kept by the recommender).
        self.fresh: MemoryIndex | None = None
        #: Maps a user's text vector (the encoder's space) into the space the index holds.
        self.project: Callable[[FloatArray], FloatArray] | None = None
        #: Item-to-item weights in closed form, regularized towards text (kept by the recommender).
        self.item_model: EASE | None = None
        #: How often users take what they were shown (the recommender's, shared).
        self.habits = exposure.Habits()
        #: Names of the index's spaces of other modalities (e.g. "image").
        self.modalities: tuple[str, ...] = ()
        #: The words for why each item is listed (in the deployment's language).
        self.reasons = Reasons(wording or Wording(), labels or {}, self._title, reputation)
        #: The deployment's rules, which every list obeys.
        self.rules = Rules()
        #: Items by tag (kept by the recommender from the catalog), a source of candidates when
        #: a list must hold only some tags.
        self.tagged: Mapping[str, set[str]] = {}
        self.learn_blend = learn_blend
        self.learning_rate = learning_rate
        prior = {
            "text": w_text,
            "cf": 0.0,
            "pop": w_pop,
            "item": w_item,
            "recent": w_recent,
            "dislike": -w_dislike,
            "aspects": w_aspects,
            "looks": w_looks,
            "ease": w_ease,
        }
        #: The blend of the signals, learned from what users take (checkpointed with the counts).
        self.blend = LearnedBlend(prior, {"cf": w_cf}, learning_rate=learning_rate, learn=learn_blend)
        #: When each item became known (event time), kept by the recommender: the item's age.
        self.born: Mapping[str, float] = {}
        #: Per user, a sample of the candidates last ranked for them: what their next take is
        #: learned against (the most recent users only).
        self.ranked: OrderedDict[str, list[str]] = OrderedDict()

    def recommend(self, request: Request, k: int = 10) -> list[Scored]:
        return self.recommend_many([request], k)[0]

    def recommend_many(self, requests: Sequence[Request], k: int = 10) -> list[list[Scored]]:
        """Rank for many users at once: one batched search per vector space."""
        text_hits = self._search(
            "text",
            [self._user_text(r.profile) for r in requests],
            [r.exclude for r in requests],
        )
        if self.query_latest and self.n_recent:
            # What the user is shopping for now: the items nearest each of their latest ones.
            for hits, more in zip(text_hits, self._search_latest(requests), strict=True):
                hits.extend(more)
        cf_hits = self._search("cf", [r.cf_vector for r in requests], [r.exclude for r in requests])
        for name in self.modalities if self.w_looks else ():
            # What the user's latest items look like: the mean of their vectors, searched.
            looks = self._search(
                name, [self._recent_mean(r, name) for r in requests], [r.exclude for r in requests]
            )
            for hits, more in zip(cf_hits, looks, strict=True):
                hits.extend(more)
        popular = self.popularity.top_many(
            self.n_candidates, [r.exclude for r in requests], hidden=self.index.hidden
        )
        if self.fresh is not None and len(self.fresh) and self.n_fresh:
            # The items nobody took yet, nearest the user's text: text is all that knows them.
            fresh = self._search_fresh(requests)
            for hits, more in zip(text_hits, fresh, strict=True):
                hits.extend(more)
        return [
            self._rank(request, text, cf, top, k)
            for request, text, cf, top in zip(requests, text_hits, cf_hits, popular, strict=True)
        ]

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

    def _search_fresh(self, requests: Sequence[Request]) -> list[list[tuple[str, float]]]:
        assert self.fresh is not None
        queries = [self._user_text(r.profile) for r in requests]
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

    def relevance(self, request: Request, item_ids: Sequence[str]) -> npt.NDArray[np.float64]:
        """The blended relevance of given items for one user, before diversification.

        The signals are standardized over `item_ids`, so scores compare items within
        one call (e.g. a true item against sampled negatives).
        """
        if not item_ids:
            return np.zeros(0)
        return self._blend(request, list(item_ids)).relevance

    def _rank(
        self,
        request: Request,
        text_hits: list[tuple[str, float]],
        cf_hits: list[tuple[str, float]],
        popular: list[tuple[str, float]],
        k: int,
    ) -> list[Scored]:
        exclude, hidden = request.exclude, self.index.hidden
        candidates: dict[str, None] = dict.fromkeys(i for i, _ in text_hits)
        candidates.update(dict.fromkeys(i for i, _ in cf_hits))
        candidates.update(dict.fromkeys(i for i, _ in popular))
        recent = request.profile.recent_items(_RECENT) if request.profile is not None else []
        if self.cooccurrence is not None and recent:
            neighbors = self.cooccurrence.neighbors([i for i, _, _ in recent], self.n_candidates)
            candidates.update(dict.fromkeys(i for i, _ in neighbors))
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
        if not ids:
            return self._pinned([], request, k)
        b = self._blend(request, ids, recent)
        if request.user and request.profile is not None and self.learn_blend:
            # A user the recommender knows (ranking for a stranger keeps nothing of them).
            self.remember(request.user, ids, b.relevance)
        if rules.boost or rules.bury:
            b.relevance += np.array([rules.shift(i, self._tags(i)) for i in ids])
        order = mmr(b.relevance, b.text_vecs, b.has_text, b.cf_vecs, k, self.mmr_lambda)
        if self.new_items > 0:
            order = self._make_room(order, b, k)
        # Which recent item each listed item is most like, in text and in co-occurrence.
        like_text = np.full(len(order), -1)
        if b.recent_has.any():
            sims = np.where(b.recent_has[None, :], b.text_vecs[order] @ b.recent_vecs.T, -np.inf)
            like_text = np.where(b.has_text[order], sims.argmax(axis=1), -1)
        like_item = b.pairs[:, order].argmax(axis=0) if len(b.pairs) else np.full(len(order), -1)
        ranked = [
            self.reasons.explain(
                ids[j],
                float(b.relevance[j]),
                b.contrib[:, j],
                b.counts[j],
                recent,
                int(like_text[n]),
                int(like_item[n]),
                bool(b.has_text[j]),
                request.profile,
                b.aspects[j],
                int(b.like_look[j]),
            )
            for n, j in enumerate(order)
        ]
        return self._pinned(ranked, request, k)

    def _make_room(self, order: list[int], b: _Blend, k: int) -> list[int]:
        """At least `new_items` of the list for items nobody took yet, where the candidates hold
        them: the best of them (by relevance) take the places of the last of the others."""
        room = int(round(self.new_items * min(k, len(order))))
        new = b.counts <= 0
        listed = [j for j in order if new[j]]
        wanted = room - len(listed)
        if wanted <= 0:
            return order
        chosen = set(order)
        extra = [int(j) for j in np.argsort(-b.relevance, kind="stable") if new[j] and int(j) not in chosen]
        extra = extra[:wanted]
        if not extra:
            return order
        keep, added = list(order), []
        for j in extra:
            older = [n for n, i in enumerate(keep) if not new[i]]
            if not older:
                break
            keep.pop(older[-1])
            added.append(j)
        return keep + added

    # -- learning the blend -------------------------------------------------------------

    def remember(self, user: str, ids: Sequence[str], relevance: DoubleArray | None = None) -> None:
        """Keep the candidates ranked (best first, by `relevance`) or shown to `user`: what their
        next take is learned against."""
        if relevance is not None:
            ids = [ids[j] for j in np.argsort(-relevance, kind="stable")]
        self.ranked[user] = list(ids)
        self.ranked.move_to_end(user)
        while len(self.ranked) > _REMEMBERED_USERS:
            self.ranked.popitem(last=False)

    def learn(self, request: Request, item: str, liked: bool = True) -> bool:
        """The user took `item` (`liked`; or took it and panned it): if it was among the candidates
        last ranked for (or shown to) them, the blend learns it against them, as they were ranked
        before the take (call it before the take changes any state). Learning from a take outside
        the candidates would teach the blend what sets the rest of the catalog apart from what
        retrieval found, not what to rank first among what it found. False if nothing was learned.

        The candidates it is learned against are the best `_REMEMBERED_BEST` of the list and as
        many drawn from the rest, seeded by the user and the item."""
        if not self.learn_blend or not request.user:
            return False
        candidates = self.ranked.get(request.user)
        if not candidates or item not in candidates:
            self.blend.n_outside += 1
            return False
        others = [i for i in candidates if i != item]
        if len(others) > _REMEMBERED_BEST + _REMEMBERED_DRAWN:
            rest = others[_REMEMBERED_BEST:]
            drawn = random.Random(f"{request.user}/{item}").sample(rest, _REMEMBERED_DRAWN)
            others = others[:_REMEMBERED_BEST] + drawn
        if not others:
            return False
        b = self._blend(request, [*others, item])
        self.blend.learn(b.features, len(others), liked)
        return True

    def _tags(self, item: str) -> list[str]:
        tags: list[str] = self.index.payload(item).get("tags") or []
        return tags

    def _pinned(self, ranked: list[Scored], request: Request, k: int) -> list[Scored]:
        """The rules' pinned items at their positions, where the list may hold them: known, on
        sale, allowed, and not taken by the user."""
        rules = self.rules
        if not rules.pin:
            return ranked
        pins = [
            pin
            for pin in sorted(rules.pin, key=lambda p: p.position)
            if pin.position <= k
            and pin.item in self.index
            and pin.item not in self.index.hidden
            and pin.item not in request.exclude
            and rules.allows(pin.item, self._tags(pin.item), request.tags)
        ]
        return place_pins(ranked, pins, k, self.reasons.wording.say("featured")) if pins else ranked

    def _blend(
        self, request: Request, ids: list[str], recent: list[tuple[str, float, str]] | None = None
    ) -> _Blend:
        profile = request.profile
        user_text = self._user_text(profile)
        text_vecs, has_text = self.index.stack("text", ids)
        cf_vecs, has_cf = self.index.stack("cf", ids)
        n = len(ids)
        raw = np.zeros((n, len(SIGNALS)))
        valid = np.zeros((n, len(SIGNALS)), dtype=bool)

        if user_text is not None:
            raw[:, _TEXT] = text_vecs @ user_text
            valid[:, _TEXT] = has_text
        if request.cf_vector is not None:
            raw[:, _CF] = cf_vecs @ request.cf_vector
            valid[:, _CF] = has_cf
        counts = self.popularity.counts(ids)
        taken = counts > 0
        # Nobody took it yet: its popularity is unknown, not low.
        raw[:, _POP] = self.popularity.scores(ids)
        valid[:, _POP] = taken
        pairs = np.zeros((0, n))
        if recent is None:
            recent = profile.recent_items(_RECENT) if profile is not None else []
        if self.cooccurrence is not None and recent:
            pairs = self.cooccurrence.contributions([i for i, _, _ in recent], ids)
            raw[:, _ITEM] = pairs.sum(axis=0)
            valid[:, _ITEM] = taken
        recent_vecs, recent_has = self.index.stack("text", [i for i, _, _ in recent])
        last = recent_has[: self.n_recent]
        if last.any():
            raw[:, _RECENT] = (text_vecs @ recent_vecs[: self.n_recent][last].T).max(axis=1)
            valid[:, _RECENT] = has_text
        disliked = profile.dislike_vector() if profile is not None else None
        if disliked is not None and self.project is not None:
            disliked = self.project(disliked)
        if disliked is not None:
            raw[:, _DISLIKE] = text_vecs @ disliked
            valid[:, _DISLIKE] = has_text
        match, best, cared = self._aspect_match(profile, ids)
        raw[:, _ASPECTS] = match
        valid[:, _ASPECTS] = cared
        looks, like_look = self._looks(ids, recent)
        raw[:, _LOOKS] = looks
        valid[:, _LOOKS] = like_look >= 0
        if self.item_model is not None and profile is not None and self.w_ease:
            # Item-to-item weights from everything the user liked that the profile still holds.
            liked = [i for i, _, action in profile.history if action not in NEGATIVE_ACTIONS]
            raw[:, _EASE], valid[:, _EASE] = self.item_model.scores(liked, ids, text_vecs)
        x = _standardize(raw, valid)
        # One-sided: items closer than most to what the user disliked sink; others keep their place.
        x[:, _DISLIKE] = np.maximum(x[:, _DISLIKE], 0.0)
        n_user = profile.n_events if profile else 0
        features = self.blend.features(x, valid, float(evidence(n_user)), evidence(counts), self._age(ids))
        relevance = self.blend.scores(features)
        contrib = self.blend.contributions(features)
        if profile is not None and profile.shown and self.w_ignored:
            passed = np.array([profile.shown.get(i, 0) for i in ids], dtype=np.float64)
            exposure_evidence = exposure.passed_over(passed, self.habits.of(*profile.list_takes))
            spread = float(relevance.std()) if len(relevance) > 1 else 1.0
            relevance = relevance - self.w_ignored * exposure_evidence * (spread or 1.0)
        return _Blend(
            relevance,
            contrib,
            counts,
            text_vecs,
            has_text,
            cf_vecs,
            pairs,
            recent_vecs,
            recent_has,
            best,
            like_look,
            features,
        )

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
        born = self.born
        days = np.array([max(0.0, now - born.get(i, now)) / 86_400.0 for i in ids])
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

    @property
    def wording(self) -> Wording:
        return self.reasons.wording

    def _title(self, item: str) -> str | None:
        if self.title_of is not None:
            return self.title_of(item)
        title: str | None = self.index.payload(item).get("title")
        return title
