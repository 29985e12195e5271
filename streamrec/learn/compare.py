"""Encoders compared on a time split: the same stream, the same recommenders, one encoder at a time.

Each encoder's run learns the first `score_from` share of the stream and scores the rest
prequentially (`PrequentialConfig.score_from`): what a fine-tuned encoder learned from that
share is judged on events it never saw. The text lift is the hybrid's HR@10 over the hybrid's
with its text signals at 0, on the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from streamrec.eval.interactions import Dataset
from streamrec.eval.prequential import PrequentialConfig
from streamrec.eval.protocol import run_prequential
from streamrec.eval.registry import default_recommenders
from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import TextEncoder
from streamrec.model.metrics.accumulators import SLICES
from streamrec.model.text.opinions import DEFAULT_ASPECTS

__all__ = ["KEPT", "RECOMMENDERS", "compare_encoders"]

#: The recommenders an encoder is judged by: text alone, and the hybrid with and without text.
RECOMMENDERS = ("text", "hybrid", "hybrid_no_text")
#: The figures kept per recommender and slice.
KEPT = ("n", "hr@10", "ndcg@10", "liked_hr@10", "liked_ndcg@10", "panned_hit@10")


def compare_encoders(
    dataset: Dataset,
    encoders: Mapping[str, TextEncoder],
    score_from: float = 0.8,
    cache_dir: Path | None = None,
    recommenders: Sequence[str] = RECOMMENDERS,
    seed: int = 42,
    progress: Callable[[str, str, int, int], None] | None = None,
) -> dict[str, Any]:
    """``{"evaluation": {label: {recommender: {slice: {metric: value}}}}, "text_lift": {label: {slice:
    ratio}}}``: per encoder, its figures, and the hybrid's HR@10 over hybrid_no_text's (when both
    are compared).

    `progress(label, phase, done, total)` follows each run.
    """
    summary = dataset.summary()
    cf_params: dict[str, Any] = {}
    if summary["rating_min"] is not None and summary["rating_min"] < summary["rating_max"]:
        cf_params["rating_range"] = (float(summary["rating_min"]), float(summary["rating_max"]))
    aspects = DEFAULT_ASPECTS if any(e.text for e in dataset.interactions) else None
    config = PrequentialConfig(ks=(10,), seed=seed, score_from=score_from)
    figures: dict[str, Any] = {}
    lift: dict[str, Any] = {}
    for label, encoder in encoders.items():
        cached = CachedEncoder(encoder, cache_dir=cache_dir)
        recs = default_recommenders(list(recommenders), text_dim=cached.dim, seed=seed, cf_params=cf_params)

        def report(phase: str, done: int, total: int, label: str = label) -> None:
            if progress is not None:
                progress(label, phase, done, total)

        result = run_prequential(dataset, recs, cached, config, progress=report, aspects=aspects)
        mine = figures[label] = {
            name: {s: {k: slices[s].get(k) for k in KEPT} for s in SLICES}
            for name, slices in result.recommenders.items()
        }
        if "hybrid" in mine and "hybrid_no_text" in mine:
            lift[label] = {
                s: _ratio(mine["hybrid"][s]["hr@10"], mine["hybrid_no_text"][s]["hr@10"]) for s in SLICES
            }
    return {"evaluation": figures, "text_lift": lift}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 4)
