"""`streamrec eval`: prequential evaluation of the recommenders on a dataset file."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "ColumnsOpt",
    "DatasetOpt",
    "FormatOpt",
    "LimitOpt",
    "SkipBadOpt",
    "default_cache",
    "eval_command",
    "read_dataset",
]

_FORMATS = "auto|movielens|recbole|amazon-csv|amazon-jsonl|goodreads|csv|jsonl"
_ITEM_FORMATS = "auto|amazon-meta|mind-news|recbole-item|csv|jsonl"

# How a dataset file is read: the same options for every command that reads one.
FormatOpt = Annotated[str, typer.Option("--format", help=f"Dataset format: {_FORMATS}.")]
ColumnsOpt = Annotated[
    str,
    typer.Option(
        "--columns",
        help="Column mapping for csv/jsonl, e.g. user=uid,item=sku,rating=stars,text=body,ts=time.",
    ),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, help="Only the first N events in time order.")
]
DatasetOpt = Annotated[
    Path,
    typer.Option(
        "--dataset",
        help="Interactions file: plain, .gz, or a .zip holding one file.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Skip and count unreadable rows instead of failing.")
]


def read_dataset(
    console: Any,
    dataset: Path,
    format: str,
    columns: str,
    limit: int | None,
    skip_bad: bool,
    items: Path | None = None,
) -> Any:
    """The dataset a command was given (with its item catalog, if any), read with a status line; a
    bad file is a usage error."""
    from streamrec.eval import load_dataset, parse_columns
    from streamrec.model.errors import DatasetError

    catalog = _read_catalog(console, items, "auto", "", "interacted", skip_bad)
    try:
        with console.status(f"reading {dataset}"):
            return load_dataset(
                dataset,
                format=format,
                columns=parse_columns(columns),
                limit=limit,
                skip_bad=skip_bad,
                items=catalog,
            )
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dataset") from None


def _read_catalog(
    console: Any, items: Path | None, items_format: str, item_columns: str, scope: str, skip_bad: bool
) -> Any:
    """The item catalog `eval --items` names, read once (the --seeds repeats reuse it); None without
    one. A bad catalog or catalog option is a usage error of its own option."""
    from streamrec.eval.catalogs import CATALOG_FORMATS, load_catalog, parse_item_columns
    from streamrec.eval.datasets import CATALOG_SCOPES
    from streamrec.model.errors import DatasetError

    if items_format not in CATALOG_FORMATS:
        raise typer.BadParameter(
            f"must be one of {', '.join(CATALOG_FORMATS)}, got {items_format!r}", param_hint="--items-format"
        )
    if scope not in CATALOG_SCOPES:
        raise typer.BadParameter(
            f"must be one of {', '.join(CATALOG_SCOPES)}, got {scope!r}", param_hint="--catalog-scope"
        )
    try:
        columns = parse_item_columns(item_columns)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--item-columns") from None
    if items is None:
        return None
    try:
        with console.status(f"reading {items}"):
            return load_catalog(items, items_format, columns, skip_bad)
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--items") from None


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamrec" / "vectors"


def eval_command(
    dataset: DatasetOpt,
    format: FormatOpt = "auto",
    columns: ColumnsOpt = "",
    limit: LimitOpt = None,
    skip_bad: SkipBadOpt = False,
    items: Path | None = typer.Option(
        None,
        "--items",
        help="Item catalog file (plain, .gz, or a .zip holding one file): each item's text (title, "
        "description, categories) and display title, merged over what the dataset itself says of its "
        "items (the catalog wins); each item enters as a catalog event before its first interaction. "
        "Amazon 2018 metadata (meta_*.json.gz), MIND news.tsv, a RecBole .item file, or any csv/jsonl "
        "table (see --item-columns).",
        exists=True,
        dir_okay=False,
        readable=True,
        show_default=False,
    ),
    items_format: str = typer.Option(
        "auto",
        "--items-format",
        help=f"Item catalog format: {_ITEM_FORMATS} (auto: from the file's name and first row).",
    ),
    item_columns: str = typer.Option(
        "",
        "--item-columns",
        help="Column mapping of a csv/jsonl item catalog, e.g. item=sku,title=name,text=description,"
        "tags=categories (tags: a list, or a |- or ,-separated string); common names are recognised "
        "without one.",
    ),
    catalog_scope: str = typer.Option(
        "interacted",
        "--catalog-scope",
        help="Which catalog items to keep: interacted (those the interactions take: a filtered review "
        "file, such as a 5-core one, names a subset of a shop's items) or all (every catalog item, "
        "recommendable as soon as it enters).",
    ),
    out: Path = typer.Option(..., "--out", help="Directory for report.md, report.json and hr_over_time.png."),
    recommenders: str = typer.Option(
        "",
        "--recommenders",
        help="Which to compare, comma-separated (default: popular, recent_popular, cf, cf_content (cf with "
        "vectors generated from text for the items it knows little of), text, hybrid, hybrid_no_text, "
        "hybrid_no_content_cf, hybrid_no_opinions, a hybrid_no_<part> per opinion part (cf_negatives, "
        "dislikes, aspects), als, ease, sasrec); also hybrid_clauses_apart (the hybrid with each "
        "review clause encoded again on its own, the ablation of the one-pass reading), "
        "hybrid_prior_blend (the blend's prior weights, never learned), hybrid_projected (a "
        "projection of the text space learned online), random, and "
        "hybrid_impressions (the hybrid with each list it ranks shown to its user as an impression; "
        "hybrid_impressions_no_cf: in its ranker alone; "
        "the report's repeat@K is the share of a list its user's previous one repeated when they "
        "took nothing of that one). With --protocol impressions the default is popular, random, "
        "text, cf, hybrid.",
        show_default=False,
    ),
    k: str = typer.Option("10,20", "--k", help="Cut-offs of the ranking metrics, comma-separated."),
    negatives: int = typer.Option(100, "--negatives", min=0, help="Sampled negatives per event for AUC."),
    cold_threshold: int = typer.Option(
        5, "--cold-threshold", min=1, help="Items/users with fewer earlier interactions are cold."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Encoder: a local model directory, e.g. a streamrec finetune output (default: "
        "STREAMREC_ENCODER__MODEL, else the bundled all-MiniLM-L6-v2).",
        show_default=False,
    ),
    finetuned: Path | None = typer.Option(
        None,
        "--finetuned",
        help="A second encoder (e.g. a streamrec finetune output): the text and hybrid rows are run "
        "again with it, as text_finetuned and hybrid_finetuned, on the same events in the same run.",
        exists=True,
        file_okay=False,
        show_default=False,
    ),
    score_from: float = typer.Option(
        0.0,
        "--score-from",
        min=0.0,
        max=0.99,
        help="Share of the stream learned before events are scored: 0.8 scores the last 20% (the time "
        "split of streamrec finetune).",
    ),
    max_length: int = typer.Option(
        128,
        "--max-length",
        min=8,
        help="Encoder tokens kept per text (128 keeps long reviews affordable on a CPU).",
    ),
    cache_dir: Path = typer.Option(
        None,
        "--cache-dir",
        help="Where text vectors are cached between runs (default: ~/.cache/streamrec/vectors).",
        show_default=False,
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the vector cache."),
    retrain_every: int = typer.Option(
        2000, "--retrain-every", min=1, help="Events between retrains of the batch peer."
    ),
    seed: int = typer.Option(42, "--seed", help="Seeds models, tie order and negative sampling."),
    protocol: str = typer.Option(
        "prequential",
        "--protocol",
        help="prequential (every event predicted, then learned), leave-one-out (each user's last "
        "interaction held out and ranked once the rest is learned, as published tables do) or "
        "impressions (datasets that log the lists shown, MIND: each list's candidates ranked for its "
        "user, AUC, MRR and nDCG@5/10 as MIND reports them, and what an unclicked showing tells).",
    ),
    seeds: str = typer.Option(
        "",
        "--seeds",
        help="Repeat the run with each of these seeds (e.g. 0,1,2: tie order, sampled negatives, models) "
        "and report the spread of every figure; the tables are the first seed's.",
    ),
    through_kafka: bool = typer.Option(
        False,
        "--through-kafka",
        help="Also replay the dataset through the real pipeline (broker, workers, Qdrant) and score "
        "the recommendations that arrive on the topic, reported as 'pipeline'.",
    ),
    rate: float = typer.Option(
        200.0, "--rate", min=1.0, help="Events per second produced with --through-kafka."
    ),
    kafka_bootstrap: str | None = typer.Option(
        None,
        "--kafka-bootstrap",
        help="Kafka for --through-kafka (default: an embedded broker) [env STREAMREC_KAFKA_BOOTSTRAP]",
    ),
) -> None:
    """Prequential (test-then-train) evaluation: every event is first predicted, then learned.

    Compares popular, recent_popular, cf (online matrix factorization alone), cf_content (cf
    with CF vectors generated from text for new items), text (the encoder alone), hybrid
    (streamrec's recommender, the code the workers run), its variants hybrid_no_text,
    hybrid_no_content_cf, hybrid_no_opinions and one variant per part of reading reviews as
    opinions (each part off alone), and two batch peers retrained periodically, als
    (implicit's ALS) and sasrec (self-attentive sequential), on the same stream, with 95%
    intervals over users; writes OUT/report.md, OUT/report.json and OUT/hr_over_time.png.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from streamrec.eval import (
        CachedEncoder,
        PrequentialConfig,
        alternate_rows,
        default_recommenders,
        load_dataset,
        parse_columns,
        run_prequential,
        seed_spread,
        write_report,
    )
    from streamrec.model.errors import DatasetError, EncoderError
    from streamrec.model.text.opinions import DEFAULT_ASPECTS

    console = Console(stderr=True)
    try:
        ks = tuple(sorted({int(part) for part in k.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter(f"must be comma-separated integers, got {k!r}", param_hint="--k") from None
    if not ks or ks[0] < 1:
        raise typer.BadParameter(f"must name at least one positive cut-off, got {k!r}", param_hint="--k")
    names = [n.strip() for n in recommenders.split(",") if n.strip()]
    if protocol not in ("prequential", "leave-one-out", "impressions"):
        raise typer.BadParameter(
            f"must be prequential, leave-one-out or impressions, got {protocol!r}", param_hint="--protocol"
        )
    try:
        repeats = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"must be comma-separated integers, got {seeds!r}", param_hint="--seeds"
        ) from None
    if repeats:
        seed = repeats[0]
    try:
        mapping = parse_columns(columns)
        started = time.perf_counter()
        catalog = _read_catalog(console, items, items_format, item_columns, catalog_scope, skip_bad)
        with console.status(f"reading {dataset}"):
            data = load_dataset(
                dataset,
                format=format,
                columns=mapping,
                limit=limit,
                skip_bad=skip_bad,
                tie_seed=seed,
                items=catalog,
                catalog_scope=catalog_scope,
            )
    except DatasetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dataset") from None
    summary = data.summary()
    console.print(
        f"[bold]{escape(data.name)}[/] ({data.format}): {summary['n_interactions']:,} events, "
        f"{summary['n_users']:,} users, {summary['n_items']:,} items; "
        f"{data.n_duplicates:,} duplicates dropped, {data.n_bad:,} bad rows skipped"
    )
    if catalog is not None and items is not None:
        taken = {e.item for e in data.interactions}
        console.print(
            f"catalog {escape(items.name)} ({catalog.format}): {len(catalog.items):,} items read, "
            f"{len(taken & catalog.items):,} of them taken by the interactions, "
            f"{len(taken - data.item_texts.keys()):,} taken items without catalog text; "
            f"{catalog.n_duplicates:,} repeated ids, {catalog.n_bad:,} bad rows skipped"
        )
    for message in data.bad_examples:
        console.print(f"  [yellow]skipped[/] {escape(message)}")
    if not data.interactions:
        raise typer.BadParameter("holds no readable interaction", param_hint="--dataset")
    if protocol == "impressions" and not data.impressions:
        raise typer.BadParameter(
            "impressions must be run on a dataset that logs the lists shown (MIND's behaviors.tsv), "
            f"got format {data.format!r}, without any",
            param_hint="--protocol",
        )

    needs_text = (not names or any(n == "text" or n.startswith("hybrid") for n in names)) and (
        data.item_texts or any(e.text for e in data.interactions)
    )
    encoder: Any = None
    if needs_text:
        from streamrec.model.text.encoder import TransformerEncoder

        try:
            with console.status("loading the text encoder"):
                from streamrec.streams.settings import Settings

                encoder = CachedEncoder(
                    TransformerEncoder(model or Settings().encoder.model, max_length=max_length),
                    cache_dir=None if no_cache else (cache_dir or default_cache()),
                )
        except EncoderError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
    alternates: dict[str, Any] = {}
    if finetuned is not None:
        from streamrec.model.text.encoder import TransformerEncoder

        try:
            with console.status(f"loading the encoder {finetuned}"):
                alternates["finetuned"] = CachedEncoder(
                    TransformerEncoder(str(finetuned), max_length=max_length),
                    cache_dir=None if no_cache else (cache_dir or default_cache()),
                )
        except EncoderError as exc:
            raise typer.BadParameter(str(exc), param_hint="--finetuned") from None
    if protocol == "impressions":
        from streamrec.streams.commands.evaluate_impressions import evaluate_impressions

        evaluate_impressions(console, data, names, encoder, out, seed=seed, started=started)
        return
    cf_params: dict[str, Any] = {}
    if summary["rating_min"] is not None and summary["rating_min"] < summary["rating_max"]:
        # Predictions are clipped to the dataset's own scale (1-5 stars, 0.5-5 half stars, ...).
        cf_params["rating_range"] = (float(summary["rating_min"]), float(summary["rating_max"]))

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
        recs = build(seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--recommenders") from None

    config = PrequentialConfig(
        ks=ks,
        n_negatives=negatives,
        cold_threshold=cold_threshold,
        seed=seed,
        protocol=protocol,
        score_from=score_from,
    )
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
                reread = load_dataset(
                    dataset,
                    format=format,
                    columns=mapping,
                    limit=limit,
                    skip_bad=skip_bad,
                    tie_seed=again,
                    items=catalog,
                    catalog_scope=catalog_scope,
                )
                again_config = PrequentialConfig(
                    ks=ks,
                    n_negatives=negatives,
                    cold_threshold=cold_threshold,
                    seed=again,
                    protocol=protocol,
                    score_from=score_from,
                )
                runs.append(run_prequential(reread, build(again), encoder, again_config, aspects=aspects))
            result.protocol["seeds"] = seed_spread(repeats, runs, ks[0])
        if through_kafka:
            from streamrec.streams.commands.kafka_eval import evaluate_through_kafka
            from streamrec.streams.settings import Settings

            settings = Settings(kafka_bootstrap=kafka_bootstrap) if kafka_bootstrap else Settings()
            live = evaluate_through_kafka(
                data,
                settings,
                out / "pipeline",
                rate=rate,
                ks=ks,
                cold_threshold=cold_threshold,
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

    table = Table(
        title=f"{data.name}: HR@{ks[0]} by slice (all: with its 95% interval over users), "
        f"all-events NDCG@{ks[0]} / AUC / MAE / disliked-neighbour rate"
    )
    disliked_key = f"disliked_neighbours@{ks[0]}"
    headers = (
        "recommender",
        "all",
        "cold items",
        "cold users",
        f"NDCG@{ks[0]}",
        "AUC",
        "MAE",
        "disliked-nbr",
    )
    for column in headers:
        table.add_column(column, justify="left" if column == "recommender" else "right")
    key = f"hr@{ks[0]}"

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
            fmt(slices["all"][f"ndcg@{ks[0]}"]),
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
