"""The hybrid ranker: candidates from text, CF and popularity, blended, diversified, explained."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from streamrec.model.base import FloatArray, VectorIndex
from streamrec.model.cf.ease import EASE
from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.blend import LearnedBlend
from streamrec.model.ranking.candidates import CandidateSearch
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.diversity import mmr_many
from streamrec.model.ranking.learning import BlendLearning
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.reasons import Reasons, Scored
from streamrec.model.ranking.request import Request
from streamrec.model.ranking.rules import Rules, place_pins
from streamrec.model.ranking.signals import Blended
from streamrec.model.text.reputation import Reputation
from streamrec.model.text.wording import Wording
from streamrec.model.users import exposure

__all__ = ["HybridRanker", "Request", "Scored"]


class HybridRanker(CandidateSearch, BlendLearning):
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
    >>> from streamrec.model.users.profile import UserProfile
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
        self._prepared = {}

    def recommend(self, request: Request, k: int = 10) -> list[Scored]:
        return self.recommend_many([request], k)[0]

    def recommend_many(self, requests: Sequence[Request], k: int = 10) -> list[list[Scored]]:
        """Rank for many users at once: one batched search per vector space, and their candidates
        scored together (`_blend_many`)."""
        user_texts = [self._user_text(r.profile) for r in requests]
        text_hits = self._search("text", user_texts, [r.exclude for r in requests])
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
            fresh = self._search_fresh(requests, user_texts)
            for hits, more in zip(text_hits, fresh, strict=True):
                hits.extend(more)
        recents = [self._recent(r) for r in requests]
        candidates = [
            self._gather(*found) for found in zip(requests, text_hits, cf_hits, popular, recents, strict=True)
        ]
        scored = [n for n, ids in enumerate(candidates) if ids]
        blended = self._blend_many(
            [requests[n] for n in scored],
            [candidates[n] for n in scored],
            [recents[n] for n in scored],
            [user_texts[n] for n in scored],
        )
        for n, b in zip(scored, blended, strict=True):
            self._ruled(requests[n], candidates[n], b)
        orders = mmr_many(
            [b.relevance for b in blended],
            [b.text_vecs for b in blended],
            [b.has_text for b in blended],
            [b.cf_vecs for b in blended],
            k,
            self.mmr_lambda,
        )
        lists = {n: (b, order) for n, b, order in zip(scored, blended, orders, strict=True)}
        return [
            self._listed(request, ids, *lists[n], recent, k) if n in lists else self._pinned([], request, k)
            for n, (request, ids, recent) in enumerate(zip(requests, candidates, recents, strict=True))
        ]

    def relevance(self, request: Request, item_ids: Sequence[str]) -> npt.NDArray[np.float64]:
        """The blended relevance of given items for one user, before diversification.

        The signals are standardized over `item_ids`, so scores compare items within
        one call (e.g. a true item against sampled negatives).
        """
        if not item_ids:
            return np.zeros(0)
        return self._blend(request, list(item_ids)).relevance

    def _ruled(self, request: Request, ids: list[str], b: Blended) -> None:
        """One request's scored candidates, remembered (what the user's next take is learned
        against) and moved by the rules' boosts and burials."""
        if request.user and request.profile is not None and self.learn_blend:
            # A user the recommender knows (ranking for a stranger keeps nothing of them).
            self.remember(request.user, ids, b.relevance)
        rules = self.rules
        if rules.boost or rules.bury:
            b.relevance += np.array([rules.shift(i, self._tags(i)) for i in ids])

    def _listed(
        self,
        request: Request,
        ids: list[str],
        b: Blended,
        order: list[int],
        recent: list[tuple[str, float, str]],
        k: int,
    ) -> list[Scored]:
        """One request's list from its diversified `order`: room for new items, reasons, pins."""
        if self.new_items > 0:
            order = self._make_room(order, b, k)
        # Which recent item each listed item is most like, in text and in co-occurrence.
        like_text = np.full(len(order), -1)
        if b.recent_has.any():
            sims = np.where(b.recent_has[None, :], b.text_vecs[order] @ b.recent_vecs.T, -np.inf)
            like_text = np.where(b.has_text[order], sims.argmax(axis=1), -1)
        like_item = b.pairs[:, order].argmax(axis=0) if len(b.pairs) else np.full(len(order), -1)
        # The listed items' numbers as Python's, read once for the list rather than item by item.
        listed = zip(
            order,
            b.relevance[order].tolist(),
            b.contrib[:, order].T.tolist(),
            b.counts[order].tolist(),
            like_text.tolist(),
            like_item.tolist(),
            b.has_text[order].tolist(),
            b.like_look[order].tolist(),
            strict=True,
        )
        ranked = [
            self.reasons.explain(
                ids[j], score, contrib, count, recent, text, item, has, request.profile, b.aspects[j], look
            )
            for j, score, contrib, count, text, item, has, look in listed
        ]
        return self._pinned(ranked, request, k)

    def _make_room(self, order: list[int], b: Blended, k: int) -> list[int]:
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

    @property
    def wording(self) -> Wording:
        return self.reasons.wording

    def _title(self, item: str) -> str | None:
        if self.title_of is not None:
            return self.title_of(item)
        title: str | None = self.index.payload(item).get("title")
        return title
