"""Writing an evaluation: `report.md` (tables), `report.json` and `hr_over_time.png`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.eval.prequential import PrequentialResult
from streamrec.model.metrics.accumulators import SLICES

__all__ = ["STREAMING", "comparisons", "metric_keys", "render_markdown", "report_json", "write_report"]

#: The online recommenders a hybrid is compared with (the batch peer is apart).
STREAMING = ("popular", "recent_popular", "cf", "text")

_RANKING = ("hr", "ndcg", "mrr", "recall", "precision", "f1")
#: What users went on to like (events rated 4-5) and to pan (rated 1-2).
_LIKED = ("liked_hr", "liked_ndcg", "panned_hit")


def metric_keys(ks: Sequence[int]) -> list[str]:
    """Metric keys of one slice, in report order.

    >>> metric_keys([10])  # doctest: +NORMALIZE_WHITESPACE
    ['hr@10', 'ndcg@10', 'mrr@10', 'recall@10', 'precision@10', 'f1@10', 'auc',
     'coverage@10', 'diversity@10', 'mae', 'rmse', 'disliked_neighbours@10',
     'liked_hr@10', 'liked_ndcg@10', 'panned_hit@10', 'repeat@10']
    """
    keys = [f"{name}@{k}" for k in ks for name in _RANKING]
    keys.append("auc")
    keys += [f"{name}@{k}" for k in ks for name in ("coverage", "diversity")]
    keys += ["mae", "rmse", f"disliked_neighbours@{min(ks)}"]
    # repeat@K: the share of a list that the user's previous one repeated, when they took nothing of it.
    return keys + [f"{name}@{k}" for k in ks for name in _LIKED] + [f"repeat@{min(ks)}"]


def report_json(result: PrequentialResult) -> dict[str, Any]:
    """`{"dataset", "protocol", "recommenders": {name: {slice: {metric: value}}}}`."""
    ks = result.protocol.get("ks", [10, 20])
    keys = metric_keys(ks)
    recommenders = {
        name: {s: {key: slices[s].get(key) for key in keys} for s in SLICES}
        for name, slices in result.recommenders.items()
    }
    first = next(iter(result.recommenders.values()), {})
    protocol = dict(result.protocol)
    protocol["events_per_slice"] = {s: first.get(s, {}).get("n", 0) for s in SLICES}
    protocol["rated_events_per_slice"] = {
        s: max((slices.get(s, {}).get("n_rated", 0) for slices in result.recommenders.values()), default=0)
        for s in SLICES
    }
    for count in ("n_liked", "n_panned"):
        protocol[f"{count[2:]}_events_per_slice"] = {
            s: max((slices.get(s, {}).get(count, 0) for slices in result.recommenders.values()), default=0)
            for s in SLICES
        }
    protocol["recommenders"] = {
        name: {
            "description": result.descriptions.get(name, ""),
            "params": result.params.get(name, {}),
            "seconds": round(result.seconds.get(name, 0.0), 2),
        }
        for name in result.recommenders
    }
    protocol["comparisons"] = comparisons(result.recommenders, batch=_batch_name(result))
    return {"dataset": result.dataset, "protocol": protocol, "recommenders": recommenders}


def _batch_name(result: PrequentialResult) -> str | None:
    known = set(STREAMING) | {"hybrid", "pipeline"}
    return next((n for n in result.recommenders if n not in known and not n.startswith("hybrid")), None)


def comparisons(
    recommenders: Mapping[str, Mapping[str, Mapping[str, Any]]], batch: str | None = None, k: int = 10
) -> dict[str, float | None]:
    """Ratios of the hybrid's HR@K to the other recommenders' (None where undefined).

    >>> r = {"hybrid": {"all": {"hr@10": 0.3}, "cold_items": {"hr@10": 0.06}},
    ...      "popular": {"all": {"hr@10": 0.2}}, "cf": {"all": {"hr@10": 0.1}, "cold_items": {"hr@10": 0.02}}}
    >>> comparisons(r)
    {'hybrid_over_best_streaming': 1.5, 'best_streaming': 'popular', 'hybrid_over_cf_cold_items': 3.0}
    """
    out: dict[str, Any] = {}
    hybrid = recommenders.get("hybrid")
    if hybrid is None:
        return out
    key = f"hr@{k}"

    def hr(name: str, s: str = "all") -> float | None:
        value = recommenders.get(name, {}).get(s, {}).get(key)
        return None if value is None else float(value)

    others: dict[str, float] = {}
    for name in STREAMING:
        value = hr(name)
        if value is not None:
            others[name] = value
    mine = hr("hybrid")
    if others and mine is not None:
        best = max(others, key=lambda n: others[n])
        out["hybrid_over_best_streaming"] = _ratio(mine, others[best])
        out["best_streaming"] = best
    if "cf" in recommenders:
        out["hybrid_over_cf_cold_items"] = _ratio(hr("hybrid", "cold_items"), hr("cf", "cold_items"))
    if batch is not None and batch in recommenders:
        out["hybrid_over_batch"] = _ratio(mine, hr(batch))
        out["batch"] = batch
    # What reading text adds, and what each part of reading reviews as opinions adds, on the same
    # events: on all of them, and on what users went on to like and to pan.
    for variant in (n for n in recommenders if n.startswith("hybrid_")):
        for s in ("all", "cold_items", "cold_users"):
            out[f"hybrid_over_{variant}_{s}"] = _ratio(hr("hybrid", s), hr(variant, s))
        for metric in ("liked_hr", "panned_hit"):
            mine_m = recommenders["hybrid"].get("all", {}).get(f"{metric}@{k}")
            theirs_m = recommenders[variant].get("all", {}).get(f"{metric}@{k}")
            if mine_m is not None and theirs_m is not None:
                out[f"hybrid_over_{variant}_{metric}"] = _ratio(mine_m, theirs_m)
    if "text" in recommenders:
        out["hybrid_over_text_cold_items"] = _ratio(hr("hybrid", "cold_items"), hr("text", "cold_items"))
    disliked = f"disliked_neighbours@{k}"
    if "hybrid_no_opinions" in recommenders:
        mine_d = recommenders["hybrid"].get("all", {}).get(disliked)
        theirs_d = recommenders["hybrid_no_opinions"].get("all", {}).get(disliked)
        out["disliked_neighbours_hybrid_over_no_opinions"] = _ratio(mine_d, theirs_d)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return None  # undefined; the tables hold both rates
    return round(a / b, 4)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _with_interval(value: Any, interval: Sequence[float] | None) -> str:
    if value is None:
        return "–"
    if not interval:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(interval[0])}, {_fmt(interval[1])}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _counts(protocol: Mapping[str, Any], kind: str) -> str:
    sizes = protocol.get(f"{kind}_events_per_slice", {})
    return ", ".join(f"{sizes.get(s, 0):,} {s}" for s in SLICES)


def _interval_table(
    recs: Mapping[str, Any],
    intervals: Mapping[str, Any],
    metrics: Sequence[str],
    k: int,
    ratios: bool = False,
) -> str:
    """One row per recommender (or per ratio `a/b`), a column per slice and metric: value [interval]."""
    rows = []
    table = intervals["ratios" if ratios else "recommenders"]
    present = [m for m in metrics if any(f"{m}@{k}" in per.get("all", {}) for per in table.values())]
    for key, slices_ in table.items():
        row: list[Any] = [key]
        for s in SLICES:
            for m in present:
                metric = f"{m}@{k}"
                if ratios:
                    a, b = key.split("/")
                    va = recs.get(a, {}).get(s, {}).get(metric)
                    vb = recs.get(b, {}).get(s, {}).get(metric)
                    value = va / vb if va is not None and vb else None
                else:
                    value = recs.get(key, {}).get(s, {}).get(metric)
                row.append(_with_interval(value, slices_.get(s, {}).get(metric)))
        rows.append(row)
    header = ["ratio" if ratios else "recommender"] + [f"{m}@{k} {s}" for s in SLICES for m in present]
    return _table(header, rows)


def render_markdown(data: Mapping[str, Any]) -> str:
    """The report as Markdown: dataset, protocol, one table per slice, recommenders."""
    dataset, protocol, recs = data["dataset"], data["protocol"], data["recommenders"]
    ks = protocol.get("ks", [10, 20])
    title = dataset.get("name", "dataset")
    parts = [f"# Prequential evaluation: {title}", ""]
    parts.append(
        f"{protocol.get('n_events', 0):,} events in time order; each is first predicted (top {max(ks)} "
        "for its user, excluding items the user already interacted with), then learned. "
        f"Same stream, events and sampled negatives for every recommender. "
        f"{protocol.get('n_scored', 0):,} events scored; {protocol.get('n_repeats_not_scored', 0):,} "
        "repeat interactions learned but not scored."
    )
    parts += ["", "## Dataset", ""]
    parts.append(_table(["field", "value"], [[k, v] for k, v in dataset.items()]))
    sizes = protocol.get("events_per_slice", {})
    for s in SLICES:
        parts += ["", f"## {s} ({sizes.get(s, 0):,} events)", ""]
        if s != "all":
            parts += [protocol.get("slices", {}).get(s, ""), ""]
        keys = metric_keys(ks)
        header = ["recommender"] + keys
        rows = [[name] + [slices[s].get(key) for key in keys] for name, slices in recs.items()]
        parts.append(_table(header, rows))
    intervals = protocol.get("intervals") or {}
    if intervals.get("recommenders"):
        k = min(ks)
        parts += ["", f"## Confidence intervals ({intervals['level']:.0%}, bootstrap over users)", ""]
        parts.append(
            f"{intervals['rounds']} resamples of the users, each with all its events; a figure's interval "
            "is the central share of its value over the resamples: two rows whose intervals overlap may "
            "not differ."
        )
        parts.append("")
        parts.append(_interval_table(recs, intervals, ("hr", "ndcg"), k))
        if any(f"liked_hr@{k}" in ci.get("all", {}) for ci in intervals["recommenders"].values()):
            parts += [
                "",
                f"What users went on to like and to pan: liked HR@{k} over the events rated 4-5 "
                f"({_counts(protocol, 'liked')}), and the panned-hit rate@{k}, the share of the events "
                f"rated 1-2 whose item was in the top {k} ({_counts(protocol, 'panned')}; lower is better):",
                "",
            ]
            parts.append(_interval_table(recs, intervals, ("liked_hr", "panned_hit"), k))
        if intervals.get("ratios"):
            parts += [
                "",
                "Ratios of the hybrid's figures to each peer's, recomputed on each resample:",
                "",
            ]
            metrics = ("hr", "ndcg", "liked_hr", "panned_hit")
            parts.append(_interval_table(recs, intervals, metrics, k, ratios=True))
    spread = protocol.get("seeds")
    if spread:
        k = min(ks)
        parts += ["", f"## Over seeds {spread['seeds']}", ""]
        parts.append(
            "The run again with each seed (tie order, sampled negatives, models): mean [least, greatest]."
        )
        parts.append("")
        header = ["recommender"] + [f"{m}@{k} {s}" for s in SLICES for m in ("hr", "ndcg")]
        rows = []
        for name, slices_ in spread["recommenders"].items():
            row = [name]
            for s in SLICES:
                for m in ("hr", "ndcg"):
                    f = slices_.get(s, {}).get(f"{m}@{k}")
                    row.append(_with_interval(f["mean"], [f["min"], f["max"]]) if f else None)
            rows.append(row)
        parts.append(_table(header, rows))
    comps = protocol.get("comparisons", {})
    if comps:
        parts += ["", "## HR@10 ratios", ""]
        parts.append(_table(["comparison", "value"], [[k, v] for k, v in comps.items()]))
    reading = protocol.get("readers") or {}
    if reading:
        parts += ["", "## Reading reviews", ""]
        parts.append(
            "Each reader reads a review before it learns its rating (sentiment AUC over the stream); "
            "the labelled figures are on 90 reviews of six domains labelled by hand, read with the "
            "sentiment model the stream taught (`streamrec/eval/labelled.py` says what each one is)."
        )
        parts.append("")
        header = ["clauses", "sequences/review", "sentiment AUC", "aspect agreement", "aspect precision",
                  "clause AUC", "contrasting clauses right"]  # fmt: skip
        auc = protocol.get("sentiment_auc", {})
        rows = []
        for mode, figures in reading.items():
            labelled = figures.get("labelled", {})
            rows.append(
                [mode, figures["encoder_sequences_per_review"], auc.get(mode, {}).get("auc")]
                + [labelled.get(key) for key in ("aspect_agreement", "aspect_precision", "clause_auc")]
                + [labelled.get("contrast_accuracy")]
            )
        parts.append(_table(header, rows))
    parts += ["", "## Recommenders", ""]
    described = protocol.get("recommenders", {})
    rows = [[name, info.get("description", ""), info.get("seconds")] for name, info in described.items()]
    parts.append(_table(["name", "what", "seconds (rank + learn)"], rows))
    parts += ["", "Parameters:", ""]
    for name, info in described.items():
        if info.get("params"):
            parts.append(f"- `{name}`: " + ", ".join(f"{k}={v}" for k, v in info["params"].items()))
    parts += ["", "## Protocol", ""]
    skip = {"recommenders", "comparisons", "slices", "events_per_slice", "intervals", "seeds", "readers"}
    parts.append(_table(["field", "value"], [[k, v] for k, v in protocol.items() if k not in skip]))
    parts += ["", "![HR@10 along the stream](hr_over_time.png)", ""]
    return "\n".join(parts)


def plot_hr_over_time(result: PrequentialResult, path: Path, window: int | None = None) -> None:
    """HR@10 of each recommender along the stream, as a moving average over scored events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.event_index)
    window = window or max(50, n // 50)
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    for name, hits in result.hits.items():
        if n == 0:
            continue
        smooth = _moving_average(hits.astype(np.float64), min(window, n))
        ax.plot(
            result.event_index[len(result.event_index) - len(smooth) :],
            smooth,
            label=name,
            linewidth=2.2 if name == "hybrid" else 1.2,
        )
    ax.set_xlabel("event in the stream")
    ax.set_ylabel(f"HR@10 (moving average of {window} events)")
    ax.set_title(f"HR@10 along the stream: {result.dataset.get('name', '')}")
    ax.grid(alpha=0.3)
    if result.hits:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _moving_average(values: npt.NDArray[np.float64], window: int) -> npt.NDArray[np.float64]:
    if window <= 1:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    return (cumulative[window:] - cumulative[:-window]) / window


def write_report(result: PrequentialResult, out: Path) -> dict[str, Path]:
    """Write the three files into `out` (created if needed); return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = report_json(result)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "hr_over_time.png"}
    paths["json"].write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    paths["md"].write_text(render_markdown(data))
    plot_hr_over_time(result, paths["png"])
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
