"""`streamrec eval` on the prequential and leave-one-out protocols: the run, its report and table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

__all__ = ["evaluate_prequential"]


def evaluate_prequential(
    console: Any,
    data: Any,
    names: list[str],
    encoder: Any,
    alternates: dict[str, Any],
    out: Path,
    *,
    config: Any,
    cf_params: dict[str, Any],
    retrain_every: int,
    repeats: list[int],
    reload: Callable[[int], Any],
    through_kafka: bool,
    kafka_bootstrap: str | None,
    rate: float,
    started: float,
) -> dict[str, Path]:
    """Run `run_prequential` on `data` with the recommenders `names` (none: the default set) and the
    alternate encoders' rows, show progress, write OUT/report.md, report.json and hr_over_time.png,
    print the table.

    `config` is the run's `PrequentialConfig`; each seed of `repeats` past the first runs again on
    `reload(seed)` (the dataset read with that tie order). `through_kafka` also scores the running
    pipeline on `data`, on the Kafka at `kafka_bootstrap` (default: an embedded broker).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streamrec.eval import (
        alternate_rows,
        default_recommenders,
        run_prequential,
        seed_spread,
        write_report,
    )
    from streamrec.model.text.opinions import DEFAULT_ASPECTS

    def build(at: int) -> list[Any]:
        rows = default_recommenders(
            names or None,
            text_dim=encoder.dim if encoder is not None else 1,
            seed=at,
            cf_params=cf_params,
            batch_params={"retrain_every": retrain_every},
        )
        for name, other in alternates.items():
            rows += alternate_rows(name, other.dim, seed=at, cf_params=cf_params)
        return rows

    try:
        recs = build(config.seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--recommenders") from None

    columns_shown = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns_shown, console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = {
                    "encode": "encoding texts",
                    "encode:finetuned": "encoding texts with the fine-tuned encoder",
                    "read": "reading reviews (one encoder pass each)",
                    "read:apart": "reading reviews, each clause encoded again (ablation)",
                    "catalog": "pipeline: catalog",
                    "replay": "pipeline: replaying events",
                }.get(phase, "test-then-train")
                tasks[phase] = progress.add_task(label, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        aspects = DEFAULT_ASPECTS if encoder is not None and any(e.text for e in data.interactions) else None
        result = run_prequential(
            data, recs, encoder, config, progress=report, aspects=aspects, alternates=alternates
        )
        if len(repeats) > 1:
            runs = [result]
            for again in repeats[1:]:
                reread = reload(again)
                again_config = replace(config, seed=again)
                runs.append(run_prequential(reread, build(again), encoder, again_config, aspects=aspects))
            result.protocol["seeds"] = seed_spread(repeats, runs, config.ks[0])
        if through_kafka:
            from streamrec.streams.commands.kafka_eval import evaluate_through_kafka
            from streamrec.streams.settings import Settings

            settings = Settings(kafka_bootstrap=kafka_bootstrap) if kafka_bootstrap else Settings()
            live = evaluate_through_kafka(
                data,
                settings,
                out / "pipeline",
                rate=rate,
                ks=config.ks,
                cold_threshold=config.cold_threshold,
                progress=report,
            )
    if through_kafka:
        result.recommenders["pipeline"] = live["slices"]
        result.descriptions["pipeline"] = (
            "the running system (broker, cf/encoder/recommender workers, Qdrant), scored on the "
            "recommendations it published"
        )
        result.protocol["pipeline"] = live["protocol"]
    result.protocol["wall_seconds_with_loading"] = round(time.perf_counter() - started, 1)
    paths = write_report(result, out)
    _print_results(console, data.name, result, config.ks[0], paths)
    return paths


def _print_results(console: Any, dataset: str, result: Any, k: int, paths: dict[str, Path]) -> None:
    """The table of every recommender's figures at cut-off `k` (on stdout), then the seeds' spread,
    the reading figures and the files written (on `console`)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{dataset}: HR@{k} by slice (all: with its 95% interval over users), "
        f"all-events NDCG@{k} / AUC / MAE / disliked-neighbour rate"
    )
    disliked_key = f"disliked_neighbours@{k}"
    headers = (
        "recommender",
        "all",
        "cold items",
        "cold users",
        f"NDCG@{k}",
        "AUC",
        "MAE",
        "disliked-nbr",
    )
    for column in headers:
        table.add_column(column, justify="left" if column == "recommender" else "right")
    key = f"hr@{k}"

    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.4f}"

    intervals = result.protocol.get("intervals", {}).get("recommenders", {})

    def with_ci(name: str, s: str) -> str:
        value, ci = result.recommenders[name][s][key], intervals.get(name, {}).get(s, {}).get(key)
        return fmt(value) if not ci else f"{fmt(value)} [{ci[0]:.3f}, {ci[1]:.3f}]"

    for name, slices in result.recommenders.items():
        table.add_row(
            name,
            with_ci(name, "all"),
            fmt(slices["cold_items"][key]),
            fmt(slices["cold_users"][key]),
            fmt(slices["all"][f"ndcg@{k}"]),
            fmt(slices["all"]["auc"]),
            fmt(slices["all"]["mae"]),
            fmt(slices["all"].get(disliked_key)),
        )
    Console().print(table)
    spread = result.protocol.get("seeds")
    if spread:
        for name, figures in spread["recommenders"].items():
            hr = figures["all"][key]
            console.print(
                f"{name} over seeds {spread['seeds']}: {key} mean {hr['mean']:.4f}, "
                f"min {hr['min']:.4f}, max {hr['max']:.4f}"
            )
    for name, figures in result.protocol.get("sentiment_auc", {}).items():
        console.print(
            f"sentiment read from text ({name} clauses): AUC {fmt(figures['auc'])} against held-out ratings "
            f"({figures['n_positive']:,} reviews of 4-5 stars, {figures['n_negative']:,} of 1-2)"
        )
    for name, reading in result.protocol.get("readers", {}).items():
        labelled = reading["labelled"]
        console.print(
            f"reading ({name} clauses): {reading['encoder_sequences_per_review']:.2f} encoder sequences per "
            f"review; on {labelled['clauses']} hand-labelled clauses of 6 domains: aspect agreement "
            f"{labelled['aspect_agreement']:.3f} (precision {labelled['aspect_precision']:.3f}), clause "
            f"polarity AUC {fmt(labelled['clause_auc'])}, contrasting clauses read right "
            f"{labelled['contrast_accuracy']:.3f}"
        )
    console.print(f"wrote {paths['md']}, {paths['json']} and {paths['png']}")
