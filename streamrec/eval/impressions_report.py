"""Writing an impressions evaluation: `report.md` (tables) and `report.json`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.eval.impressions import ImpressionsResult

__all__ = ["metric_names", "render_impressions_markdown", "write_impressions_report"]

_LABELS = {"auc": "AUC", "mrr": "MRR"}


def write_impressions_report(result: ImpressionsResult, out: Path) -> dict[str, Path]:
    """Write ``report.md`` and ``report.json`` into `out` (created if needed); return their paths.

    Examples
    --------
    >>> import tempfile
    >>> result = ImpressionsResult({"name": "toy"}, {"n_scored": 0}, {"popular": {"auc": 0.5}})
    >>> paths = write_impressions_report(result, Path(tempfile.mkdtemp()))
    >>> sorted(paths), paths["md"].read_text().splitlines()[0]
    (['json', 'md'], '# Impressions evaluation: toy')
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md"}
    paths["json"].write_text(json.dumps(result.to_json(), indent=2, default=_json_default) + "\n")
    paths["md"].write_text(render_impressions_markdown(result))
    return paths


def render_impressions_markdown(result: ImpressionsResult) -> str:
    """The report's tables: metrics per recommender, the hybrid's ratios, and exposure."""
    protocol, dataset = result.protocol, result.dataset
    metrics = metric_names(result)
    level = result.intervals.get("level", 0.95)
    lines = [f"# Impressions evaluation: {dataset.get('name', '')}", ""]
    lines += [
        f"{protocol.get('n_scored', 0):,} impressions scored (of {protocol.get('n_impressions', 0):,}; "
        f"those with at least one click and one non-click), {protocol.get('n_users_scored', 0):,} users; "
        f"{protocol.get('n_candidates_shown', 0):,} candidates shown, {protocol.get('n_clicks', 0):,} "
        f"clicks; {protocol.get('n_learn_only', 0):,} history clicks learned before each user's first "
        "impression, never scored.",
        "",
        f"Each figure: the mean over scored impressions [its {level:.0%} interval, users resampled, "
        f"{result.intervals.get('rounds', 0)} rounds].",
        "",
    ]
    intervals = result.intervals.get("recommenders", {})
    header = ["recommender", *(_LABELS.get(m, m.replace("ndcg", "nDCG")) for m in metrics)]
    rows = [
        [name, *(_with_interval(values.get(m), intervals.get(name, {}).get(m)) for m in metrics)]
        for name, values in result.recommenders.items()
    ]
    lines += _table(header, rows)
    ratios = result.intervals.get("ratios", {})
    if ratios:
        lines += ["", "## The hybrid's ratios", ""]
        rows = [
            [key, *(_with_interval(r["value"].get(m), r["interval"].get(m)) for m in metrics)]
            for key, r in ratios.items()
        ]
        lines += _table(["ratio", *header[1:]], rows)
    exposure = result.exposure
    if exposure:
        lines += [
            "",
            "## Shown before and not clicked",
            "",
            f"Per (user, candidate) shown ({exposure['n_pairs']:,} pairs, {exposure['n_users']:,} users): "
            "the earlier impressions of that user that showed it without a click. Model: the odds ratio "
            "streamrec's exposure model gives the same pairs (exp(-passed_over), each at its user's "
            f"attention then; all users' attention at the end: {exposure['attention_prior_at_end']:.3f}).",
            "",
        ]
        rows = [
            [
                b["count"],
                f"{b['pairs']:,}",
                f"{b['clicks']:,}",
                _with_interval(b["click_rate"], b["click_rate_interval"]),
                _with_interval(b["odds_ratio"], b["odds_ratio_interval"]),
                _fmt(b["model_odds_ratio"]),
                _fmt(b["mean_attention"]),
            ]
            for b in exposure["buckets"]
        ]
        heads = [
            "shown before",
            "pairs",
            "clicks",
            "click rate",
            "odds ratio",
            "model odds ratio",
            "attention",
        ]
        lines += _table(heads, rows)
    if result.descriptions:
        lines += ["", "## Recommenders", ""]
        lines += [f"- `{name}`: {text}" for name, text in result.descriptions.items()]
    return "\n".join(lines) + "\n"


def metric_names(result: ImpressionsResult) -> list[str]:
    """The metrics of a result, in report order."""
    first = next(iter(result.recommenders.values()), {})
    return [m for m in first if m != "n"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}"


def _with_interval(value: Any, interval: Sequence[float] | None) -> str:
    if value is None:
        return "–"
    return _fmt(value) if not interval else f"{_fmt(value)} [{interval[0]:.4f}, {interval[1]:.4f}]"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
