"""The options of the commands that read a dataset file, and the reading of it and its catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "ColumnsOpt",
    "DatasetOpt",
    "FormatOpt",
    "LimitOpt",
    "SkipBadOpt",
    "read_catalog",
    "read_dataset",
]

_FORMATS = "auto|movielens|recbole|amazon-csv|amazon-jsonl|goodreads|csv|jsonl"

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

    catalog = read_catalog(console, items, "auto", "", "interacted", skip_bad)
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


def read_catalog(
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
