"""What the prequential protocol measures beyond the metric sets: AUC probes, list diversity,
disliked neighbours, the review readers' sentiment AUC, and bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamrec.eval.prequential import PrequentialConfig
from streamrec.eval.stream import StreamState
from streamrec.eval.uncertainty import bootstrap_intervals
from streamrec.model.base import IntArray
from streamrec.model.metrics.accumulators import AUC, SLICES, IntraListDiversity
from streamrec.model.text.sentiment import rating_label


def probe_lists(
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


def list_diversity(state: StreamState, top: IntArray, ks: tuple[int, ...]) -> dict[int, float | None]:
    described = state.has_text[top] if len(top) else np.zeros(0, dtype=bool)
    if described.sum() < 2:
        return dict.fromkeys(ks, None)
    within = np.cumsum(described)  # described items among the first k
    sizes = [int(within[min(k, len(top)) - 1]) for k in ks]
    values = IntraListDiversity.of_prefixes(state.text_matrix[top[described]], sizes)
    return dict(zip(ks, values, strict=True))


def rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


def disliked_neighbours(state: StreamState, user: str, top: IntArray, threshold: float) -> float | None:
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


def sentiment_auc(verdicts: list[tuple[float, float]]) -> dict[str, Any]:
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


def metric_intervals(
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
