"""The pass over the stream: each event scored by every recommender, then learned by every one."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from streamrec.eval.arrivals import Arrival, enter_item
from streamrec.eval.base import StreamRecommender
from streamrec.eval.encodings import Vectors
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.labelled import score_reading
from streamrec.eval.measures import (
    disliked_neighbours,
    list_diversity,
    metric_intervals,
    probe_lists,
    rounded,
    sentiment_auc,
)
from streamrec.eval.prequential import PrequentialConfig, PrequentialResult
from streamrec.eval.stream import StreamState
from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import FloatArray
from streamrec.model.metrics.accumulators import AUC, SLICES, MetricSet, Observation, slices_of
from streamrec.model.text.reader import Passage, ReviewReader
from streamrec.model.text.sentiment import rating_label
from streamrec.model.users.profile import rating_weight


def replay_stream(
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
    """Score each event of `dataset` with every recommender, then teach it to every one; the result."""
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
        probe = probe_lists(state, user, target, config.n_negatives, rng)
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
                diversity=list_diversity(state, top, ks),
                disliked=disliked_neighbours(state, user, top[: ks[0]], config.disliked_cosine),
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
            enter_item(state, new_item, new_vector)
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
    results = {name: {s: rounded(m.result(n_items)) for s, m in metrics[name].items()} for name in names}
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
    protocol["intervals"] = metric_intervals(
        names, results, hits, gains, scored_users, scored_slices, scored_verdicts, ks[0], config
    )
    sentiment = {mode: sentiment_auc(v) for mode, v in verdicts.items() if v}
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


def _last_of_each_user(events: Sequence[Interaction]) -> set[int]:
    """Position of each user's last interaction in the stream, for users with two or more."""
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for n, event in enumerate(events):
        last[event.user] = n
        count[event.user] = count.get(event.user, 0) + 1
    return {n for user, n in last.items() if count[user] >= 2}
