"""`streamrec eval --protocol impressions`: every logged impression re-ranked, its table printed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

__all__ = ["evaluate_impressions"]


def evaluate_impressions(
    console: Any,
    data: Any,
    names: list[str],
    encoder: Any,
    out: Path,
    seed: int = 42,
    started: float | None = None,
) -> dict[str, Path]:
    """Run `run_impressions` on `data` with the recommenders `names` (default: those of the
    impressions protocol), show progress, write OUT/report.md and OUT/report.json, print the table.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from streamrec.eval.impressions import DEFAULT_RECOMMENDERS, ImpressionsConfig, run_impressions
    from streamrec.eval.impressions_report import metric_names, write_impressions_report
    from streamrec.eval.registry import default_recommenders

    started = time.perf_counter() if started is None else started
    try:
        recs = default_recommenders(
            names or list(DEFAULT_RECOMMENDERS), text_dim=encoder.dim if encoder is not None else 1, seed=seed
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--recommenders") from None
    console.print(
        f"{len(data.impressions):,} impressions, {sum(len(i.shown) for i in data.impressions):,} candidates "
        f"shown; {sum(e.learn_only for e in data.interactions):,} history clicks learned before them"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = {"encode": "encoding texts"}.get(phase, "scoring impressions, then learning them")
                tasks[phase] = progress.add_task(label, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        result = run_impressions(data, recs, encoder, ImpressionsConfig(seed=seed), progress=report)
    result.protocol["wall_seconds_with_loading"] = round(time.perf_counter() - started, 1)
    paths = write_impressions_report(result, out)

    metrics = metric_names(result)
    table = Table(
        title=f"{escape(data.name)}: {result.protocol['n_scored']:,} impressions scored, "
        f"{result.protocol['n_users_scored']:,} users (95% intervals over users)"
    )
    table.add_column("recommender", justify="left")
    for metric in metrics:
        table.add_column(
            {"auc": "AUC", "mrr": "MRR"}.get(metric, metric.replace("ndcg", "nDCG")), justify="right"
        )
    intervals = result.intervals.get("recommenders", {})
    for name, values in result.recommenders.items():
        table.add_row(name, *(_cell(values.get(m), intervals.get(name, {}).get(m)) for m in metrics))
    for key, ratio in result.intervals.get("ratios", {}).items():
        table.add_row(
            f"[italic]{key}[/]", *(_cell(ratio["value"].get(m), ratio["interval"].get(m)) for m in metrics)
        )
    Console().print(table)
    exposure = Table(title="shown before without a click: click rate and odds ratio against never")
    for column in ("shown before", "pairs", "click rate", "odds ratio", "model odds ratio"):
        exposure.add_column(column, justify="right")
    for b in result.exposure.get("buckets", []):
        exposure.add_row(
            b["count"],
            f"{b['pairs']:,}",
            _cell(b["click_rate"], b["click_rate_interval"]),
            _cell(b["odds_ratio"], b["odds_ratio_interval"]),
            _cell(b["model_odds_ratio"], None),
        )
    Console().print(exposure)
    console.print(f"wrote {paths['md']} and {paths['json']}")
    return paths


def _cell(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if not interval else f"{value:.4f} [{interval[0]:.3f}, {interval[1]:.3f}]"
