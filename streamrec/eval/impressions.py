"""The impressions protocol: each logged list re-ranked by every recommender, as MIND scores it.

The stream is replayed in time order. Events flagged `learn_only` (histories) are learned as the
prequential protocol learns them. At each impression, every recommender scores the impression's
candidates for its user from what it knows so far (`StreamRecommender.score_items`); the
impression is then shown to every recommender (`learn_impression`), and its clicks are learned
as events. Clicks of the same second as an impression are learned after it is scored: they are
its own, or another user's at the same moment. Catalog items enter as `run_prequential` lets them:
at their `Dataset.item_times` (for MIND, when first shown or clicked), before anything of theirs.

Per impression and recommender: AUC (clicked against not clicked, ties counting half), MRR and
nDCG@5, nDCG@10 with the MIND definitions (Wu et al., ACL 2020: MRR is the mean of the reciprocal
ranks of all clicked candidates; a click gains 1 at rank r, discounted by log2(r + 1)), averaged
over the impressions that hold at least one click and one non-click. Where a recommender scores
candidates the same, the ranking metrics are their expectation over the orders of the tie.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from streamrec.eval.arrivals import Arrival, catalog_arrivals, enter_item
from streamrec.eval.base import StreamRecommender
from streamrec.eval.encodings import encode_texts
from streamrec.eval.exposure import measure_exposure
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.stream import StreamState
from streamrec.eval.uncertainty import bootstrap_intervals
from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import DoubleArray, FloatArray, TextEncoder
from streamrec.model.users.profile import rating_weight

__all__ = [
    "DEFAULT_RECOMMENDERS",
    "ImpressionsConfig",
    "ImpressionsResult",
    "impression_metrics",
    "run_impressions",
]

#: Compared when none are named: the two floors, each signal alone, and streamrec's hybrid.
DEFAULT_RECOMMENDERS = ("popular", "random", "text", "cf", "hybrid")


@dataclass(frozen=True)
class ImpressionsConfig:
    """How the impressions are scored.

    Parameters
    ----------
    ks
        Cut-offs of nDCG.
    seed
        Seeds the bootstrap.
    bootstrap_rounds
        Resamples (of users) behind each interval.
    """

    ks: tuple[int, ...] = (5, 10)
    seed: int = 42
    bootstrap_rounds: int = 1000

    def metric_names(self) -> list[str]:
        return ["auc", "mrr", *(f"ndcg@{k}" for k in self.ks)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": "impressions: in time order, each impression's candidates scored for its user "
            "by every recommender from what it learned so far; then the impression shown to them and "
            "its clicks learned; histories learned before each user's first impression, never scored",
            "scored": "impressions with at least one click and one non-click",
            "metrics": {
                "auc": "clicked against not clicked, ties counting half",
                "mrr": "mean reciprocal rank of the clicked candidates (MIND)",
                **{f"ndcg@{k}": f"DCG@{k} / ideal DCG@{k}, gain 1 per click (MIND)" for k in self.ks},
            },
            "ties": "ranking metrics take the expectation over the orders of tied candidates",
            "seed": self.seed,
        }


@dataclass
class ImpressionsResult:
    """Mean metrics per recommender, their intervals, and what being passed over tells."""

    dataset: dict[str, Any]
    protocol: dict[str, Any]
    #: Per recommender, metric -> mean over the scored impressions.
    recommenders: dict[str, dict[str, float | None]]
    #: `bootstrap_intervals`' output: per recommender and metric, and for the hybrid's ratios.
    intervals: dict[str, Any] = field(default_factory=dict)
    #: `measure_exposure`' output.
    exposure: dict[str, Any] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "recommenders": self.recommenders,
            "intervals": self.intervals,
            "exposure": self.exposure,
            "descriptions": self.descriptions,
            "params": self.params,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def impression_metrics(
    scores: npt.ArrayLike, clicked: npt.ArrayLike, ks: Sequence[int] = (5, 10)
) -> dict[str, float] | None:
    """AUC, MRR and nDCG@k of one impression's scores; None without both a click and a non-click.

    Tied scores count half in AUC; MRR and nDCG take their expectation over the orders of a tie.

    Examples
    --------
    >>> m = impression_metrics([0.9, 0.8, 0.1, 0.5], [False, True, False, True], ks=(2,))
    >>> {k: round(v, 4) for k, v in m.items()}
    {'auc': 0.5, 'mrr': 0.4167, 'ndcg@2': 0.3869}
    >>> impression_metrics([1.0, 1.0], [True, False])["auc"], impression_metrics([1.0], [True])
    (0.5, None)
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    y = np.asarray(clicked, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # AUC from mean ranks (Mann-Whitney): a tie between a click and a non-click counts half.
    ranks = _mean_ranks(s)
    auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    # Ranking metrics, best first: each tie's clicks spread evenly over the tie's ranks.
    order = np.argsort(-s, kind="stable")
    ordered, hits = s[order], y[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(s)])
    clicks = np.add.reduceat(hits, starts)
    rank = np.arange(1, len(s) + 1, dtype=np.float64)
    out = {"auc": float(auc), "mrr": float((clicks * _tie_mean(1.0 / rank, starts, sizes)).sum() / n_pos)}
    for k in ks:
        gain = np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)
        ideal = gain[: min(n_pos, k)].sum()
        out[f"ndcg@{k}"] = float((clicks * _tie_mean(gain, starts, sizes)).sum() / ideal)
    return out


def _mean_ranks(s: DoubleArray) -> DoubleArray:
    """1-based ranks in ascending order, a tie's members all at the tie's mean rank."""
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(s)])
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return ranks


def _tie_mean(values: DoubleArray, starts: npt.NDArray[np.intp], sizes: npt.NDArray[np.intp]) -> DoubleArray:
    return np.add.reduceat(values, starts) / sizes


def run_impressions(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    encoder: TextEncoder | CachedEncoder | None,
    config: ImpressionsConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImpressionsResult:
    """Replay `dataset` and score every recommender on each of its impressions.

    `progress(phase, done, total)` is called as texts are encoded (phase ``encode``) and as
    impressions are replayed (``impressions``).

    Examples
    --------
    >>> from pathlib import Path
    >>> from streamrec.eval.baselines import Popular, Random
    >>> from streamrec.eval.interactions import Impression
    >>> lists = [Impression(u, float(t), ("hit", "miss"), ("hit",)) for t, u in enumerate("abcd")]
    >>> clicks = [Interaction(i.user, "hit", i.ts) for i in lists]
    >>> data = Dataset("toy", Path("toy"), "mind", clicks, impressions=lists)
    >>> result = run_impressions(data, [Popular(), Random(seed=0)], None)
    >>> result.recommenders["popular"]["auc"], result.protocol["n_scored"]
    (0.875, 4)
    """
    config = config or ImpressionsConfig()
    started = time.perf_counter()
    events = dataset.interactions
    cached = encoder if isinstance(encoder, CachedEncoder) or encoder is None else CachedEncoder(encoder)
    state = StreamState(cached.dim if cached is not None else 1)

    # Texts are encoded up front in batches, as `run_prequential` does.
    catalog_ids = list(dict.fromkeys([*dataset.item_texts, *dataset.item_titles, *dataset.item_times]))
    described = [i for i in catalog_ids if i in dataset.item_texts]
    review_rows = [j for j, e in enumerate(events) if e.text]
    catalog_vectors: dict[str, FloatArray] = {}
    review_vectors: dict[int, FloatArray] = {}
    encoder_seconds = 0.0
    if cached is not None:
        t0 = time.perf_counter()
        texts = [dataset.item_texts[i] for i in described]
        catalog_vectors = dict(zip(described, encode_texts(cached, texts, "encode", progress), strict=True))
        if review_rows:
            said = [events[j].text or "" for j in review_rows]
            review_vectors = dict(
                zip(review_rows, encode_texts(cached, said, "encode", progress), strict=True)
            )
        cached.save()
        encoder_seconds = time.perf_counter() - t0
    catalog, arrivals = catalog_arrivals(dataset, catalog_ids, catalog_vectors)
    for item, (_, vector) in catalog.items():
        enter_item(state, item, vector)
    if events:
        state.ts = events[0].ts
    for rec in recommenders:
        rec.start(state, catalog)
    with threadpool_limits(1, "blas"):
        scored = _replay(dataset, recommenders, state, review_vectors, arrivals, config, progress)
    result = _result(dataset, recommenders, config, *scored)
    result.protocol.update(
        {
            "encoder": cached.version if cached is not None else None,
            "encoder_seconds": round(encoder_seconds, 1),
            "texts_encoded": cached.n_encoded if cached is not None else 0,
            "texts_from_cache": cached.n_cached if cached is not None else 0,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    )
    return result


_Scored = tuple[list[str], dict[str, dict[str, list[float]]], dict[str, float], int]


def _replay(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    state: StreamState,
    review_vectors: dict[int, FloatArray],
    arrivals: Sequence[Arrival],
    config: ImpressionsConfig,
    progress: Callable[[str, int, int], None] | None,
) -> _Scored:
    """Learn the events and score the impressions, in time order; the per-impression metrics."""
    events, impressions = dataset.interactions, dataset.impressions
    names = [r.name for r in recommenders]
    metrics: dict[str, dict[str, list[float]]] = {n: {m: [] for m in config.metric_names()} for n in names}
    seconds = dict.fromkeys(names, 0.0)
    users: list[str] = []
    n_learned = 0
    entered = 0
    total = len(impressions)
    tick = max(1, total // 200)

    def enter(upto: float) -> None:
        """Catalog items due by `upto` enter, as catalog events would."""
        nonlocal entered
        while entered < len(arrivals) and arrivals[entered][0] <= upto:
            at, item, title, vector = arrivals[entered]
            entered += 1
            state.ts = at
            enter_item(state, item, vector)
            for rec in recommenders:
                t0 = time.perf_counter()
                rec.add_item(item, title, vector, at)
                seconds[rec.name] += time.perf_counter() - t0

    def learn(n: int, event: Interaction) -> None:
        enter(event.ts)
        state.n_events, state.ts = n, event.ts
        pos = state.add_item(event.item)
        vector = review_vectors.get(n)
        if vector is not None:
            state.set_text(pos, state.texts.add_review(event.item, vector, rating_weight(event.rating)))
        for rec in recommenders:
            t0 = time.perf_counter()
            rec.learn(event, vector)
            seconds[rec.name] += time.perf_counter() - t0
        state.item_counts[pos] += 1
        state.user_counts[event.user] = state.user_counts.get(event.user, 0) + 1
        state.seen.setdefault(event.user, {})[pos] = None

    if progress is not None:
        progress("impressions", 0, total)
    for done, impression in enumerate(impressions, start=1):
        while n_learned < len(events) and events[n_learned].ts < impression.ts:
            learn(n_learned, events[n_learned])
            n_learned += 1
        enter(impression.ts)
        state.ts = impression.ts
        positions = np.array([state.add_item(item) for item in impression.shown], dtype=np.int64)
        taken = set(impression.clicked)
        clicked = np.array([item in taken for item in impression.shown], dtype=bool)
        if clicked.any() and not clicked.all():
            users.append(impression.user)
            for rec in recommenders:
                t0 = time.perf_counter()
                scores = rec.score_items(impression.user, positions)
                seconds[rec.name] += time.perf_counter() - t0
                values = impression_metrics(scores, clicked, config.ks)
                assert values is not None  # both a click and a non-click
                for metric, value in values.items():
                    metrics[rec.name][metric].append(value)
        for rec in recommenders:
            t0 = time.perf_counter()
            rec.learn_impression(impression.user, impression.shown, impression.clicked)
            seconds[rec.name] += time.perf_counter() - t0
        if progress is not None and (done % tick == 0 or done == total):
            progress("impressions", done, total)
    for n in range(n_learned, len(events)):
        learn(n, events[n])
    for rec in recommenders:
        rec.finish()
    return users, metrics, seconds, len(events)


def _result(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    config: ImpressionsConfig,
    users: list[str],
    metrics: dict[str, dict[str, list[float]]],
    seconds: dict[str, float],
    n_events: int,
) -> ImpressionsResult:
    names = [r.name for r in recommenders]
    means = {
        name: {m: round(float(np.mean(v)), 6) if v else None for m, v in per.items()}
        for name, per in metrics.items()
    }
    ratios = [("hybrid", peer) for peer in ("popular", "text") if "hybrid" in names and peer in names]
    intervals: dict[str, Any] = {}
    if users:
        values = {name: {m: np.array(v) for m, v in per.items()} for name, per in metrics.items()}
        found = bootstrap_intervals(
            users,
            values,
            {"all": np.ones(len(users), dtype=bool)},
            ratios,
            rounds=config.bootstrap_rounds,
            seed=config.seed,
        )
        intervals = {
            "rounds": found["rounds"],
            "level": found["level"],
            "resampled": found["resampled"],
            "recommenders": {name: per["all"] for name, per in found["recommenders"].items()},
            "ratios": {
                f"{a}/{b}": {
                    "value": {m: _ratio(means[a][m], means[b][m]) for m in config.metric_names()},
                    "interval": found["ratios"].get(f"{a}/{b}", {}).get("all", {}),
                }
                for a, b in ratios
            },
        }
    impressions = dataset.impressions
    protocol = config.as_dict()
    protocol.update(
        {
            "n_impressions": len(impressions),
            "n_scored": len(users),
            "n_not_scored": len(impressions) - len(users),
            "n_users_scored": len(set(users)),
            "n_candidates_shown": sum(len(i.shown) for i in impressions),
            "n_clicks": sum(len(i.clicked) for i in impressions),
            "n_events_learned": n_events,
            "n_learn_only": sum(1 for e in dataset.interactions if e.learn_only),
        }
    )
    return ImpressionsResult(
        dataset=dataset.summary(),
        protocol=protocol,
        recommenders=means,
        intervals=intervals,
        exposure=measure_exposure(impressions, rounds=config.bootstrap_rounds, seed=config.seed),
        descriptions={r.name: r.description for r in recommenders},
        params={r.name: r.params() for r in recommenders},
        seconds=seconds,
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)
