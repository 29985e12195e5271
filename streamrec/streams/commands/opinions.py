"""`streamrec opinions`: what a shop's reviewers say, read as the pipeline reads it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from streamrec.streams.commands.dataset_options import (
    ColumnsOpt,
    FormatOpt,
    LimitOpt,
    SkipBadOpt,
    read_dataset,
)

__all__ = ["opinions_command"]


def opinions_command(
    dataset: Path = typer.Option(
        ...,
        "--dataset",
        help="Reviews file: plain, .gz, or a .zip holding one file (the formats of `streamrec eval`).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
    format: FormatOpt = "auto",
    columns: ColumnsOpt = "",
    aspects: Path | None = typer.Option(
        None,
        "--aspects",
        help='Aspects to read reviews for, a JSON list [{"name", "phrases": [...], "labels": {...}}] '
        "(the file a deployment sets as STREAMREC_ASPECTS_FILE); default: value, quality, service, "
        "ease of use, appearance.",
        exists=True,
        dir_okay=False,
    ),
    limit: LimitOpt = None,
    out: Path = typer.Option(..., "--out", help="Directory for reviews.jsonl, items.json and items.html."),
    max_length: int = typer.Option(
        256, "--max-length", min=8, help="Encoder tokens per window (a longer review is read in several)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Encoder: a local model directory (default: the bundled all-MiniLM-L6-v2)."
    ),
    skip_bad: SkipBadOpt = False,
) -> None:
    """Read a shop's reviews as the pipeline does and show what reviewers say of each item.

    Reviews are read in time order by the encoder workers' own review reader: one encoder pass
    each, the sentiment model reading each review before it learns its rating, opinions per
    aspect with their own polarity. Writes OUT/reviews.jsonl (per review: user_id, item_id,
    rating, polarity, text, opinions with aspect, polarity, start, end, text), OUT/items.json
    (per item and aspect: reviewers, praising (surely), not praising, standing, strongest praise and
    criticism) and OUT/items.html, a page to read. Try an aspects file here before deploying it.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streamrec.eval.opinions import labels_of, read_opinions, write_opinions
    from streamrec.model.errors import EncoderError, StreamrecError
    from streamrec.model.text.opinions import DEFAULT_ASPECTS, load_aspects

    console = Console(stderr=True)
    try:
        chosen = load_aspects(aspects) if aspects is not None else DEFAULT_ASPECTS
    except StreamrecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--aspects") from None
    data = read_dataset(console, dataset, format, columns, limit, skip_bad)
    n_reviews = sum(1 for e in data.interactions if e.text)
    console.print(
        f"[bold]{escape(data.name)}[/] ({data.format}): {len(data.interactions):,} events, "
        f"{n_reviews:,} with review text"
    )
    if not n_reviews:
        raise typer.BadParameter(
            "holds no review text (map a text column with --columns text=NAME)", param_hint="--dataset"
        )
    from streamrec.model.text.encoder import TransformerEncoder
    from streamrec.model.text.reader import ReviewReader

    try:
        with console.status("loading the text encoder"):
            reader = ReviewReader(TransformerEncoder(model, max_length=max_length), chosen)
    except EncoderError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    started = time.perf_counter()
    columns_shown = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns_shown, console=console) as progress:
        task = progress.add_task("reading reviews", total=n_reviews)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        run = read_opinions(data, reader, progress=advance)
    seconds = time.perf_counter() - started
    paths = write_opinions(run, out, labels_of(reader), data.name)
    found: dict[str, Any] = {}
    for review in run.reviews:
        for opinion in review["opinions"]:
            found[opinion["aspect"]] = found.get(opinion["aspect"], 0) + 1
    console.print(
        f"read {len(run.reviews):,} reviews in {seconds:.0f} s "
        f"({len(run.reviews) / max(seconds, 1e-9):.1f}/s, "
        f"{reader.n_sequences / max(reader.n_reviews, 1):.2f} encoder sequences per review); opinions: "
        + ", ".join(f"{name} {n:,}" for name, n in sorted(found.items(), key=lambda kv: -kv[1]))
    )
    console.print(f"wrote {paths['reviews']}, {paths['items']} and {paths['page']}")
