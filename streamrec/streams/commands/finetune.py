"""`streamrec finetune`: the encoder trained on a shop's own interactions, judged on a time split."""

from __future__ import annotations

from pathlib import Path

import typer

from streamrec.streams.commands.dataset_options import (
    ColumnsOpt,
    DatasetOpt,
    FormatOpt,
    LimitOpt,
    SkipBadOpt,
    read_dataset,
)
from streamrec.streams.commands.evaluate import default_cache

__all__ = ["finetune_command"]


def finetune_command(
    dataset: DatasetOpt,
    format: FormatOpt = "auto",
    columns: ColumnsOpt = "",
    limit: LimitOpt = None,
    skip_bad: SkipBadOpt = False,
    items: Path | None = typer.Option(
        None,
        "--items",
        help="Item catalog (Amazon meta JSON lines, MIND news.tsv, RecBole .item, CSV/JSONL; as "
        "streamrec eval --items reads it): the items' own texts make pairs too.",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", help="Directory for the trained encoder and manifest.json."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Encoder to start from: a local model directory (default: STREAMREC_ENCODER__MODEL, else "
        "the bundled all-MiniLM-L6-v2).",
        show_default=False,
    ),
    train_share: float = typer.Option(
        0.8,
        "--train-share",
        min=0.05,
        max=0.95,
        help="Share of the stream (time order) to train on; the rest is where the evaluation scores.",
    ),
    max_pairs: int = typer.Option(
        8192,
        "--max-pairs",
        min=1,
        help="Most training pairs, drawn with --seed from all the training share yields (about 3 min per "
        "1,000 pairs on 2 CPU cores at the default length; seconds on a GPU).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Optimizer steps (default: one pass over the pairs).", show_default=False
    ),
    batch_size: int = typer.Option(
        32,
        "--batch-size",
        min=2,
        help="Pairs per batch; each anchor's negatives are the batch's other positives.",
    ),
    learning_rate: float = typer.Option(5e-5, "--learning-rate", min=0.0, help="Peak learning rate."),
    max_seq_length: int = typer.Option(
        64,
        "--max-seq-length",
        min=8,
        help="Tokens of each text the training reads (serving reads texts whole).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is one), cpu, or cuda[:N]."),
    evaluate: bool = typer.Option(
        True,
        "--evaluate/--no-evaluate",
        help="Compare the base and the trained encoder (text, hybrid, hybrid without text) on the events "
        "after the training share, in manifest.json.",
    ),
    max_length: int = typer.Option(
        128, "--max-length", min=8, help="Encoder tokens per window in the evaluation (as streamrec eval)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds the pairs drawn, the batch order and dropout."),
) -> None:
    """Fine-tune the text encoder on what a shop's users did, and measure it against the base.

    Pairs come from the first --train-share of the events in time order (the text of what a user
    took or wrote, and the text of the next item they took; a review and its item's text; never
    a review of 1-2 stars as a positive). A copy of the encoder is trained on them with
    sentence-transformers' trainer (multiple negatives ranking loss, batches without a text
    twice), on CUDA in bfloat16 when there is one. OUT holds the trained encoder, which the
    workers and streamrec eval take as STREAMREC_ENCODER__MODEL=OUT, and manifest.json: base
    model, data, pairs, steps, loss curve and, with --evaluate, the base and trained encoders'
    HR@10, NDCG@10, liked HR@10 and panned-hit rate on the rest of the stream.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from streamrec.learn.finetune import TrainConfig, train, write_manifest
    from streamrec.learn.pairs import build_pairs, split_at
    from streamrec.model.errors import EncoderError
    from streamrec.streams.settings import Settings

    console = Console(stderr=True)
    base = model or Settings().encoder.model
    data = read_dataset(console, dataset, format, columns, limit, skip_bad, items=items)
    split = split_at(data.interactions, train_share)
    all_pairs = build_pairs(data, train_share, seed=seed)
    pairs = all_pairs.sample(max_pairs, seed)
    console.print(
        f"[bold]{escape(data.name)}[/] ({data.format}): {len(data.interactions):,} events; training on the "
        f"first {split:,}: {len(all_pairs):,} pairs ("
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(all_pairs.counts().items()))
        + f"), {len(pairs):,} drawn"
    )
    if len(pairs) < batch_size:
        raise typer.BadParameter(
            f"yields {len(pairs)} training pairs, fewer than one batch of {batch_size}: it needs users with "
            "two or more interactions, or reviews of items that have text",
            param_hint="--dataset",
        )
    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_seq_length=max_seq_length,
        device=device,
        seed=seed,
    )
    shown = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*shown, console=console) as progress:
        task = progress.add_task("training", total=None)

        def step(done: int, total: int, loss: float | None) -> None:
            label = "training" if loss is None else f"training (loss {loss:.3f})"
            progress.update(task, completed=done, total=total, description=label)

        try:
            training = train(pairs, out, base, config, progress=step)
        except (ValueError, EncoderError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
    console.print(
        f"trained {training.steps:,} steps in {training.seconds:.0f} s on {training.device} "
        f"({training.precision})"
    )
    described = {
        "path": str(dataset),
        "name": data.name,
        "format": data.format,
        "events": len(data.interactions),
        "train_share": train_share,
        "train_events": split,
        "pairs_available": all_pairs.counts(),
    }
    extra: dict[str, object] = {
        "config": {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_seq_length": max_seq_length,
            "max_pairs": max_pairs,
            "seed": seed,
            "loss": "MultipleNegativesRankingLoss (in-batch negatives), no-duplicates batches",
        }
    }
    if evaluate:
        from streamrec.learn.compare import compare_encoders
        from streamrec.model.text.encoder import TransformerEncoder

        encoders = {
            "base": TransformerEncoder(base, max_length=max_length),
            "finetuned": TransformerEncoder(str(out), max_length=max_length),
        }
        with Progress(*shown, console=console) as progress:
            tasks: dict[tuple[str, str], object] = {}

            def follow(label: str, phase: str, done: int, total: int) -> None:
                key = (label, phase)
                if key not in tasks:
                    tasks[key] = progress.add_task(f"{label}: {phase}", total=total)
                progress.update(tasks[key], completed=done, total=total)  # type: ignore[arg-type]

            compared = compare_encoders(data, encoders, train_share, default_cache(), progress=follow)
        extra.update(compared)
        _show(console, Table, compared)
    path = write_manifest(out, training, described, **extra)
    console.print(f"wrote the encoder and {path}; run the pipeline with it: STREAMREC_ENCODER__MODEL={out}")


def _show(console: object, table_type: type, compared: dict[str, object]) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    table = table_type(title="HR@10 on the events after the training share (base -> fine-tuned)")
    for column in ("recommender", "slice", "HR@10", "liked HR@10", "panned-hit@10"):
        table.add_column(column, justify="left" if column in ("recommender", "slice") else "right")
    evaluation = compared["evaluation"]
    assert isinstance(evaluation, dict)
    base, tuned = evaluation["base"], evaluation["finetuned"]

    def pair(a: float | None, b: float | None) -> str:
        return "–" if a is None or b is None else f"{a:.4f} -> {b:.4f}"

    for name in base:
        for s in ("all", "cold_items", "cold_users"):
            x, y = base[name][s], tuned[name][s]
            table.add_row(
                name, s, pair(x["hr@10"], y["hr@10"]), pair(x["liked_hr@10"], y["liked_hr@10"]),
                pair(x["panned_hit@10"], y["panned_hit@10"]),
            )  # fmt: skip
    Console().print(table)
    lift = compared.get("text_lift") or {}
    assert isinstance(lift, dict)
    for label, slices in lift.items():
        console.print(
            f"text lift ({label} encoder), hybrid / hybrid without text HR@10: "
            + ", ".join(f"{s} {v:.3f}" if v is not None else f"{s} –" for s, v in slices.items())
        )
