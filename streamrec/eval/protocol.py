"""Prequential (test-then-train) evaluation of streaming recommenders on one event stream.

For each interaction in time order, every recommender is first asked for its top K for
that user, excluding what the user already interacted with; the list is scored against
the item the user actually took. Then every recommender learns from the event, with its
review text if any. All recommenders see the same stream and are scored on the same
events, negatives and slices, with the metric accumulators the live workers use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from streamrec.eval.base import StreamRecommender
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.labelled import score_reading
from streamrec.eval.stream import StreamState
from streamrec.eval.uncertainty import bootstrap_intervals
from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import FloatArray, IntArray, TextEncoder
from streamrec.model.metrics.accumulators import (
    AUC,
    SLICES,
    IntraListDiversity,
    MetricSet,
    Observation,
    slices_of,
)
from streamrec.model.text.opinions import Aspect
from streamrec.model.text.reader import Passage, ReviewReader
from streamrec.model.text.sentiment import rating_label
from streamrec.model.users.profile import rating_weight

__all__ = ["PrequentialConfig", "PrequentialResult", "run_prequential"]


@dataclass(frozen=True)
class PrequentialConfig:
    """How the stream is scored.

    Parameters
    ----------
    ks
        Cut-offs of the ranking metrics.
    n_negatives
        Negatives sampled per event for AUC (items the user has not interacted with).
    cold_threshold
        An item (user) is cold when it had fewer interactions than this before the event.
    seed
        Seeds the negative sampler.
    """

    ks: tuple[int, ...] = (10, 20)
    n_negatives: int = 100
    cold_threshold: int = 5
    seed: int = 42
    #: Text cosine above which a listed item counts as a neighbour of an item the user disliked.
    disliked_cosine: float = 0.9
    #: Resamples (of users) behind each confidence interval.
    bootstrap_rounds: int = 1000
    #: "prequential" (test, then train, on every event) or "leave-one-out" (each user's last
    #: interaction held out and ranked against the whole catalog once the rest is learned).
    protocol: str = "prequential"
    #: Share of the stream (in time order) learned before any event is scored: 0.8 learns the
    #: first 80% and scores the rest prequentially (a time split, e.g. for a model trained on
    #: that 80%).
    score_from: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": "time (ties shuffled with a fixed seed)",
            "scheme": "prequential: recommend for the user, score against the true item, then learn it"
            if self.protocol == "prequential"
            else "leave-one-out: each user's last interaction held out; the rest learned in time order; "
            "then each held-out item ranked over the whole catalog, the user's history excluded",
            "exclude_seen": True,
            "repeat_events": "not scored (the true item is excluded as already seen), but learned",
            "ks": list(self.ks),
            "auc_negatives": self.n_negatives,
            "cold_threshold": self.cold_threshold,
            "slices": {
                "all": "every scored event",
                "cold_items": f"events whose item had fewer than {self.cold_threshold} earlier interactions",
                "cold_users": f"events whose user had fewer than {self.cold_threshold} earlier interactions",
            },
            "diversity": "mean pairwise 1 - cosine of the listed items' text vectors (items with text only)",
            "coverage": "share of the items known at the end that appeared in some top-K list",
            "liked": "liked HR@K and NDCG@K: over the events whose user rated the item 4-5; panned-hit "
            "rate@K: the share of the events rated 1-2 whose item was in the top K (lower is better)",
            "repeat": f"repeat@{self.ks[0]}: the share of a user's top {self.ks[0]} that their previous "
            "list held, when they took nothing of that one (all events only)",
            "disliked_neighbours": f"share of the top {self.ks[0]} (items with text) whose text cosine to "
            f"an item the user rated 1-2 so far is above {self.disliked_cosine}; events of users with one",
            "reading": "per reader: encoder sequences and clauses per review; and, on 90 reviews of six "
            "domains labelled by hand (streamrec/data/labelled_reviews.jsonl), with the sentiment model "
            "the stream taught: aspect agreement and precision, clause polarity AUC, and the accuracy "
            "on clauses whose polarity is opposite to their review's rating",
            "sentiment": "AUC of the polarity the review reader reads in each review's text, before "
            "learning its rating, against the rating (1-2 stars negative, 4-5 positive); per reader: "
            "pooled (one encoder pass per review) and, when a recommender needs it, apart (each "
            "clause encoded again)",
            "seed": self.seed,
            "score_from": self.score_from,
        }


@dataclass
class PrequentialResult:
    """Metrics per recommender and slice, and the per-event hits behind the HR-over-time plot."""

    dataset: dict[str, Any]
    protocol: dict[str, Any]
    recommenders: dict[str, dict[str, dict[str, Any]]]
    descriptions: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Stream position of each scored event.
    event_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Per recommender, 1 where the scored event's item was in the top 10 (first K).
    hits: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "recommenders": self.recommenders,
            "descriptions": self.descriptions,
            "params": self.params,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def run_prequential(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    encoder: TextEncoder | CachedEncoder | None,
    config: PrequentialConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    aspects: Sequence[Aspect] | None = None,
    alternates: Mapping[str, TextEncoder | CachedEncoder] | None = None,
) -> PrequentialResult:
    """Run the protocol over `dataset` and return every recommender's metrics.

    `alternates` are other encoders by name: a recommender whose `encoder` names one reads its
    vectors of catalog texts and reviews (how reviews read as opinions is the main encoder's
    reading, so that rows differ in their text vectors alone).

    `progress(phase, done, total)` is called as texts are encoded (phase ``encode``; then
    ``read`` and ``read:apart`` as reviews are read for `aspects`) and as events are processed
    (``stream``). Reviews are read by `ReviewReader`s, one per reading mode the recommenders
    ask for, each reading a review before it learns its rating, as the encoder role does.
    """
    config = config or PrequentialConfig()
    started = time.perf_counter()
    events = dataset.interactions
    encoder_seconds = 0.0
    cached = encoder if isinstance(encoder, CachedEncoder) or encoder is None else CachedEncoder(encoder)
    text_dim = cached.dim if cached is not None else 1
    state = StreamState(text_dim)

    # Texts are encoded up front in batches: the same vectors the encoder worker would
    # produce one message at a time, at a fraction of the cost.
    catalog_ids = list(dict.fromkeys([*dataset.item_texts, *dataset.item_titles, *dataset.item_times]))
    described = [i for i in catalog_ids if i in dataset.item_texts]
    review_rows = [j for j, e in enumerate(events) if e.text]
    catalog_vectors: dict[str, FloatArray] = {}
    review_vectors: dict[int, FloatArray] = {}
    readers: dict[str, tuple[ReviewReader, dict[int, Passage]]] = {}
    if cached is not None:
        t0 = time.perf_counter()
        texts = [dataset.item_texts[i] for i in described]
        catalog_vectors = dict(zip(described, _encoded(cached, texts, "encode", progress), strict=True))
        said = [events[j].text or "" for j in review_rows]
        if aspects is None or not review_rows:
            review_vectors = dict(zip(review_rows, _encoded(cached, said, "encode", progress), strict=True))
        else:
            asked = {getattr(r, "reading", "pooled") for r in recommenders} - {"pooled"}
            for mode in ["pooled", *sorted(asked)]:
                reader = ReviewReader(cached, aspects, clauses=mode)  # type: ignore[arg-type]
                passages = _passages(reader, said, "read" if mode == "pooled" else f"read:{mode}", progress)
                readers[mode] = (reader, dict(zip(review_rows, passages, strict=True)))
            review_vectors = {j: p.vector for j, p in readers["pooled"][1].items()}
        cached.save()
        encoder_seconds = time.perf_counter() - t0
    others: dict[str, Vectors] = {}
    for name, other in (alternates or {}).items():
        t0 = time.perf_counter()
        alt = other if isinstance(other, CachedEncoder) else CachedEncoder(other)
        texts = [dataset.item_texts[i] for i in described]
        said = [events[j].text or "" for j in review_rows]
        others[name] = (
            dict(zip(described, _encoded(alt, texts, f"encode:{name}", progress), strict=True)),
            dict(zip(review_rows, _encoded(alt, said, f"encode:{name}", progress), strict=True)),
        )
        alt.save()
        encoder_seconds += time.perf_counter() - t0

    catalog, arrivals = _catalog_entries(dataset, catalog_ids, catalog_vectors)
    for item, (_, vector) in catalog.items():
        _enter(state, item, vector)
    if events:
        state.ts = events[0].ts
    for rec in recommenders:
        if rec.encoder:
            own = others[rec.encoder][0]
            rec.start(state, {item: (title, own.get(item)) for item, (title, _) in catalog.items()})
        else:
            rec.start(state, catalog)

    # Every product in the loop is one vector against a small matrix: BLAS threads only add
    # synchronization, and on a busy machine their spinning costs more than the work.
    with threadpool_limits(1, "blas"):
        return _stream(
            dataset,
            recommenders,
            state,
            review_vectors,
            readers,
            config,
            cached,
            started,
            encoder_seconds,
            progress,
            arrivals=arrivals,
            others=others,
        )


#: Another encoder's vectors: of each catalog item's text, and of each review (by its event's row).
Vectors = tuple[dict[str, FloatArray], dict[int, FloatArray]]

#: A catalog item entering mid-stream: its time, id, display title and text vector.
Arrival = tuple[float, str, str, FloatArray | None]


def _catalog_entries(
    dataset: Dataset, ids: Sequence[str], vectors: Mapping[str, FloatArray]
) -> tuple[dict[str, tuple[str, FloatArray | None]], list[Arrival]]:
    """The catalog items entering before the stream (id -> (display title, vector)), and those
    entering mid-stream, in time order.

    Each item enters as a catalog event before its first interaction, as on the items topic:
    at its time in `Dataset.item_times`, or at its first interaction if that comes earlier;
    items without a time enter before the stream. The title is the display title where one is
    known, else the item's text.
    """
    first_take: dict[str, float] = {}
    for event in dataset.interactions:
        first_take.setdefault(event.item, event.ts)
    at_start: dict[str, tuple[str, FloatArray | None]] = {}
    arrivals: list[Arrival] = []
    for item in ids:
        title = dataset.item_titles.get(item) or dataset.item_texts.get(item) or item
        ts = dataset.item_times.get(item)
        if ts is None:
            at_start[item] = (title, vectors.get(item))
        else:
            arrivals.append((min(ts, first_take.get(item, ts)), item, title, vectors.get(item)))
    arrivals.sort(key=lambda arrival: arrival[0])  # stable: ties keep the catalog order
    return at_start, arrivals


def _enter(state: StreamState, item: str, vector: FloatArray | None) -> None:
    """A catalog item made known to the stream, with its text vector."""
    pos = state.add_item(item)
    if vector is not None:
        state.set_text(pos, state.texts.set_catalog(item, vector))


def _stream(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    state: StreamState,
    review_vectors: Mapping[int, FloatArray],
    readers: Mapping[str, tuple[ReviewReader, Mapping[int, Passage]]],
    config: PrequentialConfig,
    cached: CachedEncoder | None,
    started: float,
    encoder_seconds: float,
    progress: Callable[[str, int, int], None] | None,
    arrivals: Sequence[Arrival] = (),
    others: Mapping[str, Vectors] | None = None,
) -> PrequentialResult:
    events = dataset.interactions
    others = others or {}
    ks = tuple(sorted(config.ks))
    kmax = ks[-1]
    names = [r.name for r in recommenders]
    metrics = {name: {s: MetricSet(ks) for s in SLICES} for name in names}
    seconds = dict.fromkeys(names, 0.0)
    hits: dict[str, list[int]] = {name: [] for name in names}
    gains: dict[str, list[float]] = {name: [] for name in names}
    scored_at: list[int] = []
    scored_users: list[str] = []
    scored_slices: list[list[str]] = []
    scored_verdicts: list[int | None] = []
    rng = np.random.default_rng(config.seed)
    #: Per reader, `(polarity read before the rating was learned, rating)` of each rated review.
    verdicts: dict[str, list[tuple[float, float]]] = {mode: [] for mode in readers}
    n_repeats = 0
    #: Per recommender, each user's last list (its top K) and whether their next event hit it.
    last_lists: dict[str, dict[str, tuple[set[int], bool]]] = {name: {} for name in names}
    #: Per recommender, the share of a list that the one before repeated, where that one was
    #: passed over (the user's next event took nothing of it).
    repeated: dict[str, list[float]] = {name: [] for name in names}
    total = len(events)
    tick = max(1, total // 200)

    def score(n: int, event: Interaction) -> None:
        """Rank for the event's user with every recommender, and score the list against its item."""
        user, item = event.user, event.item
        target = state.pos.get(item)
        item_count = 0 if target is None else int(state.item_counts[target])
        slices = slices_of(state.user_counts.get(user, 0), item_count, config.cold_threshold)
        probe = _probe(state, user, target, config.n_negatives, rng)
        scored_at.append(n)
        scored_users.append(user)
        scored_slices.append(slices)
        verdict = rating_label(event.rating)
        scored_verdicts.append(verdict)
        for rec in recommenders:
            t0 = time.perf_counter()
            top, probe_scores = rec.rank(user, kmax, probe)
            predicted = rec.predict_rating(user, item) if event.rating is not None else None
            seconds[rec.name] += time.perf_counter() - t0
            rank = None
            if target is not None:
                where = np.flatnonzero(top == target)
                rank = int(where[0]) + 1 if len(where) else None
            auc = None
            if probe_scores is not None and len(probe_scores) > 1:
                auc = AUC.of(probe_scores[0], probe_scores[1:])
            obs = Observation(
                recommended=top.tolist(),
                rank=rank,
                auc=auc,
                diversity=_diversity(state, top, ks),
                disliked=_disliked_neighbours(state, user, top[: ks[0]], config.disliked_cosine),
                rating=(predicted, event.rating)
                if predicted is not None and event.rating is not None
                else None,
                verdict=verdict,
            )
            for s in slices:
                metrics[rec.name][s].observe(obs)
            within = rank is not None and rank <= ks[0]
            shown = set(top[: ks[0]].tolist())
            before = last_lists[rec.name].get(user)
            if before is not None and not before[1] and shown:
                repeated[rec.name].append(len(shown & before[0]) / len(shown))
            last_lists[rec.name][user] = (shown, within)
            hits[rec.name].append(1 if within else 0)
            gains[rec.name].append(1.0 / math.log2(rank + 1) if within and rank is not None else 0.0)

    # Leave-one-out: each user's last interaction (of users with two or more) is held out, the
    # rest learned in time order, then every held-out interaction scored against the final state.
    held = _last_of_each_user(events) if config.protocol == "leave-one-out" else set()
    first_scored = int(config.score_from * total)
    entered = 0
    for n, event in enumerate(events):
        # Catalog items due by this event's time enter first, as catalog events would.
        while entered < len(arrivals) and arrivals[entered][0] <= event.ts:
            at, new_item, title, new_vector = arrivals[entered]
            entered += 1
            state.ts = at
            _enter(state, new_item, new_vector)
            for rec in recommenders:
                t0 = time.perf_counter()
                own = others[rec.encoder][0].get(new_item) if rec.encoder else new_vector
                rec.add_item(new_item, title, own, at)
                seconds[rec.name] += time.perf_counter() - t0
        state.n_events = n
        state.ts = event.ts
        user, item = event.user, event.item
        target = state.pos.get(item)
        if held:
            if n in held:
                if progress is not None and (n % tick == 0 or n == total - 1):
                    progress("stream", n + 1, total)
                continue
        elif n < first_scored or event.learn_only:
            pass  # learned only: before the split, or an event without a time of its own
        elif state.has_seen(user, target):
            n_repeats += 1
        else:
            score(n, event)
        # -- then train ----------------------------------------------------------------
        pos = state.add_item(item)
        vector = review_vectors.get(n)
        state.readings = {}
        for mode, (reader, passages) in readers.items():
            passage = passages.get(n)
            if passage is not None:
                # Read before the rating is learned, as the encoder role reads it; then learned.
                reading = state.readings[mode] = reader.judge(passage, event.rating)
                if event.rating is not None:
                    verdicts[mode].append((reading.polarity, event.rating))
                reader.learn(passage, event.rating)
                reader.commit()
        if vector is not None:
            state.set_text(pos, state.texts.add_review(item, vector, rating_weight(event.rating)))
        for rec in recommenders:
            t0 = time.perf_counter()
            rec.learn(event, others[rec.encoder][1].get(n) if rec.encoder else vector)
            seconds[rec.name] += time.perf_counter() - t0
        state.item_counts[pos] += 1
        state.user_counts[user] = state.user_counts.get(user, 0) + 1
        state.seen.setdefault(user, {})[pos] = None
        if rating_label(event.rating) == 0:
            state.disliked.setdefault(user, []).append(pos)
        if progress is not None and (n % tick == 0 or n == total - 1):
            progress("stream", n + 1, total)

    for rec in recommenders:
        rec.finish()
    for n in sorted(held):
        state.n_events, state.ts = n, events[n].ts
        score(n, events[n])
    if cached is not None:
        cached.save()
    n_items = state.n_items
    results = {name: {s: _rounded(m.result(n_items)) for s, m in metrics[name].items()} for name in names}
    for name in names:
        if repeated[name]:
            results[name]["all"][f"repeat@{ks[0]}"] = round(float(np.mean(repeated[name])), 4)
            results[name]["all"][f"n_repeat@{ks[0]}"] = len(repeated[name])
    protocol = config.as_dict()
    protocol.update(
        {
            "n_events": total,
            "n_scored": len(scored_at),
            "n_repeats_not_scored": n_repeats,
            "n_learned_before_scoring": first_scored if not held else 0,
            "n_items_known_at_end": n_items,
            "encoder": cached.version if cached is not None else None,
            "encoder_seconds": round(encoder_seconds, 1),
            "texts_encoded": cached.n_encoded if cached is not None else 0,
            "texts_from_cache": cached.n_cached if cached is not None else 0,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    )
    protocol["intervals"] = _intervals(
        names, results, hits, gains, scored_users, scored_slices, scored_verdicts, ks[0], config
    )
    sentiment = {mode: _sentiment(v) for mode, v in verdicts.items() if v}
    if sentiment:
        protocol["sentiment_auc"] = sentiment
    if readers:
        protocol["readers"] = {
            mode: {
                "encoder_sequences_per_review": round(reader.n_sequences / max(reader.n_reviews, 1), 3),
                "clauses_per_review": round(
                    sum(len(p.spans) for p in passages.values()) / max(len(passages), 1), 3
                ),
            }
            for mode, (reader, passages) in readers.items()
        }
        # The readers as the stream left them, on reviews labelled by hand (nothing learned from them).
        for mode, (reader, _) in readers.items():
            protocol["readers"][mode]["labelled"] = score_reading(reader)
    return PrequentialResult(
        dataset=dataset.summary(),
        protocol=protocol,
        recommenders=results,
        descriptions={r.name: r.description for r in recommenders},
        params={r.name: r.params() for r in recommenders},
        seconds=seconds,
        event_index=np.array(scored_at, dtype=np.int64),
        hits={name: np.array(h, dtype=np.uint8) for name, h in hits.items()},
    )


def _probe(
    state: StreamState, user: str, target: int | None, n_negatives: int, rng: np.random.Generator
) -> IntArray | None:
    """The true item's position followed by sampled negatives, or None when it is unknown."""
    if target is None or n_negatives <= 0 or state.n_items < 2:
        return None
    seen = state.seen.get(user, {})
    draw = rng.integers(0, state.n_items, size=2 * n_negatives + len(seen) // 4 + 8)
    negatives = [int(p) for p in draw if p != target and p not in seen]
    if not negatives:
        return None
    return np.array([target, *negatives[:n_negatives]], dtype=np.int64)


def _diversity(state: StreamState, top: IntArray, ks: tuple[int, ...]) -> dict[int, float | None]:
    described = state.has_text[top] if len(top) else np.zeros(0, dtype=bool)
    if described.sum() < 2:
        return dict.fromkeys(ks, None)
    within = np.cumsum(described)  # described items among the first k
    sizes = [int(within[min(k, len(top)) - 1]) for k in ks]
    values = IntraListDiversity.of_prefixes(state.text_matrix[top[described]], sizes)
    return dict(zip(ks, values, strict=True))


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


def _encoded(
    cached: CachedEncoder, texts: list[str], phase: str, progress: Callable[[str, int, int], None] | None
) -> FloatArray:
    """The texts' vectors, encoded in batches (and cached), with progress."""
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(phase, done, len(texts))

    if progress is not None:
        progress(phase, 0, len(texts))
    return cached.encode(texts, progress=advance) if texts else np.zeros((0, cached.dim), np.float32)


def _passages(
    reader: ReviewReader, texts: list[str], phase: str, progress: Callable[[str, int, int], None] | None
) -> list[Passage]:
    """Each review as `reader` encodes it, a slice at a time (to show progress)."""
    out: list[Passage] = []
    step = 512
    for start in range(0, len(texts), step):
        if progress is not None:
            progress(phase, start, len(texts))
        out.extend(reader.encode(texts[start : start + step]))
    if progress is not None:
        progress(phase, len(texts), len(texts))
    return out


def _disliked_neighbours(state: StreamState, user: str, top: IntArray, threshold: float) -> float | None:
    """Share of the listed items (with text) whose text cosine to an item the user rated 1-2 is above
    `threshold`; None when the user rated nothing 1-2 yet, or no listed item has text."""
    disliked = state.disliked.get(user)
    if not disliked or len(top) == 0:
        return None
    described = state.has_text[top]
    bad = np.array(disliked, dtype=np.int64)
    bad = bad[state.has_text[bad]]
    if not described.any() or len(bad) == 0:
        return None
    sims = state.text_matrix[top[described]] @ state.text_matrix[bad].T
    return float((sims.max(axis=1) > threshold).mean())


def _sentiment(verdicts: list[tuple[float, float]]) -> dict[str, Any]:
    """AUC of the polarity read from each review's text, before its rating was learned, against
    that rating: 1-2 stars negative, 4-5 positive."""
    labelled = [(p, rating_label(r)) for p, r in verdicts]
    pos = [p for p, label in labelled if label == 1]
    neg = np.array([p for p, label in labelled if label == 0])
    auc = AUC()
    for score in pos:
        auc.observe(score, neg)
    value = auc.value
    return {"auc": None if value is None else round(value, 4), "n_positive": len(pos), "n_negative": len(neg)}


def _intervals(
    names: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
    hits: dict[str, list[int]],
    gains: dict[str, list[float]],
    users: list[str],
    slices: list[list[str]],
    verdicts: list[int | None],
    k: int,
    config: PrequentialConfig,
) -> dict[str, Any]:
    """Bootstrap intervals (over users) of HR@k and NDCG@k, of liked HR@k and the panned-hit rate@k
    where events are rated, and of the hybrid's ratio to each peer."""
    if not users:
        return {}
    verdict = np.array([-1 if v is None else v for v in verdicts])
    values: dict[str, dict[str, Any]] = {}
    for name in names:
        hit = np.array(hits[name], dtype=np.float64)
        values[name] = {f"hr@{k}": hit, f"ndcg@{k}": np.array(gains[name])}
        if (verdict >= 0).any():
            values[name][f"liked_hr@{k}"] = np.where(verdict == 1, hit, np.nan)
            values[name][f"panned_hit@{k}"] = np.where(verdict == 0, hit, np.nan)
    masks = {s: np.array([s in scored for scored in slices]) for s in SLICES}
    ratios = []
    if "hybrid" in names:
        others = [n for n in names if n != "hybrid"]
        peers = [n for n in others if not n.startswith("hybrid")]
        best = max(peers, key=lambda n: results[n]["all"][f"hr@{k}"], default=None)
        ratios = [
            ("hybrid", n) for n in ([best] if best else []) + [n for n in others if n.startswith("hybrid")]
        ]
    out = bootstrap_intervals(users, values, masks, ratios, rounds=config.bootstrap_rounds, seed=config.seed)
    out["best_other"] = ratios[0][1] if ratios else None
    return out


def _last_of_each_user(events: Sequence[Interaction]) -> set[int]:
    """Position of each user's last interaction in the stream, for users with two or more."""
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for n, event in enumerate(events):
        last[event.user] = n
        count[event.user] = count.get(event.user, 0) + 1
    return {n for user, n in last.items() if count[user] >= 2}
