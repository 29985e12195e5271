"""`streamrec eval`: its options, and the dataset and encoders they name, handed to a protocol's run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from streamrec.streams.commands.dataset_options import (
    ColumnsOpt,
    DatasetOpt,
    FormatOpt,
    LimitOpt,
    SkipBadOpt,
    read_catalog,
)

__all__ = ["default_cache", "eval_command"]

_ITEM_FORMATS = "auto|amazon-meta|mind-news|recbole-item|csv|jsonl"


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

    from streamrec.eval import CachedEncoder, PrequentialConfig, load_dataset, parse_columns
    from streamrec.model.errors import DatasetError, EncoderError

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
        catalog = read_catalog(console, items, items_format, item_columns, catalog_scope, skip_bad)
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
    from streamrec.streams.commands.evaluate_prequential import evaluate_prequential

    cf_params: dict[str, Any] = {}
    if summary["rating_min"] is not None and summary["rating_min"] < summary["rating_max"]:
        # Predictions are clipped to the dataset's own scale (1-5 stars, 0.5-5 half stars, ...).
        cf_params["rating_range"] = (float(summary["rating_min"]), float(summary["rating_max"]))

    def reload(tie_seed: int) -> Any:
        """The dataset read again, its ties in the order of `tie_seed` (a --seeds repeat)."""
        return load_dataset(
            dataset,
            format=format,
            columns=mapping,
            limit=limit,
            skip_bad=skip_bad,
            tie_seed=tie_seed,
            items=catalog,
            catalog_scope=catalog_scope,
        )

    config = PrequentialConfig(
        ks=ks,
        n_negatives=negatives,
        cold_threshold=cold_threshold,
        seed=seed,
        protocol=protocol,
        score_from=score_from,
    )
    evaluate_prequential(
        console,
        data,
        names,
        encoder,
        alternates,
        out,
        config=config,
        cf_params=cf_params,
        retrain_every=retrain_every,
        repeats=repeats,
        reload=reload,
        through_kafka=through_kafka,
        kafka_bootstrap=kafka_bootstrap,
        rate=rate,
        started=started,
    )
