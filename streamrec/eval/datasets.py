"""Dataset loaders: public interaction logs read into one time-ordered stream.

Formats
-------
``movielens``
    MovieLens ``u.data`` (tab-separated, ml-100k), ``ratings.dat`` (``::``, ml-1m/10m)
    or ``ratings.csv`` (ml-latest); titles and genres from ``u.item``, ``movies.dat`` or
    ``movies.csv`` next to it.
``recbole``
    RecBole atomic files: ``NAME.inter`` with a ``name:type`` header; item text from
    ``NAME.item`` next to it.
``amazon-csv``, ``amazon-jsonl``
    Amazon reviews (2014 CSV form, 2014/2018 JSON lines): ``reviewerID``, ``asin``,
    ``overall``, ``reviewText``, ``summary``, ``unixReviewTime``.
``goodreads``
    UCSD Goodreads reviews (JSON lines): ``user_id``, ``book_id``, ``rating``,
    ``review_text``, ``date_added``.
``csv``, ``jsonl``
    Any table, with a column mapping for the roles ``user``, ``item``, ``rating``,
    ``text`` and ``ts`` (common names are recognised without one).

An item catalog file (``items``: Amazon metadata, MIND news, a RecBole ``.item`` file or any
table, see `streamrec.eval.catalogs`) adds item texts and display titles to any format.

gzip and zip files are read transparently. Rows that repeat an earlier row exactly are
dropped and counted; a row that cannot be read raises `DatasetError` naming its line,
or is skipped and counted with ``skip_bad=True``.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
>>> _ = path.write_text("who,what,when\\nann,guitar,20\\nbob,drum,10\\nbob,drum,10\\n")
>>> data = load_dataset(path, columns={"user": "who", "item": "what", "ts": "when"})
>>> [(e.user, e.item) for e in data.interactions], data.n_duplicates
([('bob', 'drum'), ('ann', 'guitar')], 1)
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Mapping
from pathlib import Path

from streamrec.eval.catalog_entries import Catalog
from streamrec.eval.catalogs import CATALOG_FORMATS, load_catalog
from streamrec.eval.files import (
    base_name,
    csv_header,
    csv_rows,
    field_name,
    json_rows,
    member_name,
    open_text,
    sibling,
    sniff,
    text_lines,
)
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.item_texts import catalog_text
from streamrec.eval.rows import ROLES, RowReader, parse_columns, text_of
from streamrec.model.errors import DatasetError

__all__ = [
    "CATALOG_FORMATS",
    "CATALOG_SCOPES",
    "FORMATS",
    "Dataset",
    "Interaction",
    "detect_format",
    "load_dataset",
    "parse_columns",
]

#: Which catalog items a dataset keeps: those its interactions take, or all.
CATALOG_SCOPES = ("interacted", "all")
FORMATS = ("auto", "movielens", "recbole", "amazon-csv", "amazon-jsonl", "goodreads", "mind", "csv", "jsonl")


def detect_format(path: Path) -> str:
    """Guess a file's format from its name and its first row.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.json"
    >>> _ = path.write_text('{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1}\\n')
    >>> detect_format(path)
    'amazon-jsonl'
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset must be a readable file, got {str(path)!r}")
    name = member_name(path)
    lower = name.lower()
    if lower.endswith(".inter"):
        return "recbole"
    if lower == "behaviors.tsv":
        return "mind"
    if lower in ("u.data", "ratings.dat"):
        return "movielens"
    with open_text(path) as stream:
        first = ""
        for line in stream:
            if line.strip():
                first = line
                break
    from streamrec.eval.mind import is_behaviors_line  # MIND keeps a loader of its own

    if is_behaviors_line(first):
        return "mind"
    if lower.endswith((".json", ".jsonl", ".ndjson")) or first.lstrip().startswith("{"):
        try:
            record = json.loads(first)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: expected JSON lines, got a first line {first[:60]!r}")
        if "reviewerID" in record and "asin" in record:
            return "amazon-jsonl"
        if "book_id" in record and "user_id" in record:
            return "goodreads"
        return "jsonl"
    header = next(csv.reader([first], dialect=sniff(first)), [])
    if {"reviewerID", "asin"} <= set(header):
        return "amazon-csv"
    if {"userId", "movieId"} <= set(header) and lower == "ratings.csv":
        return "movielens"
    return "csv"


# -- loaders per format ----------------------------------------------------------------------


def _load_table(path: Path, fmt: str, given: Mapping[str, str], skip_bad: bool) -> RowReader:
    if fmt in ("jsonl", "amazon-jsonl", "goodreads"):
        builder = RowReader(path, fmt, given, skip_bad)
        rows = json_rows(path)
    else:
        builder = RowReader(path, fmt, given, skip_bad, header=csv_header(path))
        rows = csv_rows(path)
    for line, row in rows:
        builder.add(line, row)
    return builder


def _load_recbole(path: Path, given: Mapping[str, str], skip_bad: bool) -> tuple[RowReader, dict[str, str]]:
    header = [field_name(h) for h in csv_header(path, "\t")]
    builder = RowReader(path, "recbole", given, skip_bad, header=header)
    for line, row in csv_rows(path, header=header, delimiter="\t"):
        if line == 1:
            continue  # the typed header
        builder.add(line, row)
    texts: dict[str, str] = {}
    item_file = sibling(path, base_name(path)[: -len(".inter")] + ".item")
    if item_file is not None and builder.columns is not None:
        fields = [field_name(h) for h in csv_header(item_file, "\t")]
        item_field = builder.columns["item"]
        id_field = item_field if item_field in fields else fields[0]
        for line, row in csv_rows(item_file, header=fields, delimiter="\t"):
            if line == 1 or isinstance(row, str):
                continue  # the typed header, or a row that is not worth failing the run for
            named = dict(row)
            item = text_of(named.pop(id_field, None))
            if item:
                texts[item] = catalog_text(named)
    return builder, texts


_ML_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_ML_COLUMNS = {"user": "user", "item": "item", "rating": "rating", "ts": "ts"}


def _load_movielens(path: Path, given: Mapping[str, str], skip_bad: bool) -> tuple[RowReader, dict[str, str]]:
    name = base_name(path).lower()
    texts: dict[str, str] = {}
    if name.endswith(".csv"):  # ml-latest, ml-20m, ml-25m
        columns = {"user": "userId", "item": "movieId", "rating": "rating", "ts": "timestamp", **given}
        builder = _load_table(path, "csv", columns, skip_bad)
        movies = sibling(path, "movies.csv")
        if movies is not None:
            for _, row in csv_rows(movies):
                if not isinstance(row, str) and "movieId" in row:
                    texts[row["movieId"].strip()] = catalog_text(row)
        return builder, texts
    header = list(_ML_COLUMNS)
    builder = RowReader(path, "movielens", {**_ML_COLUMNS, **given}, skip_bad, header=header)
    if name.endswith(".dat"):  # ml-1m, ml-10m
        for line, text in text_lines(path):
            values = text.split("::")
            builder.add(
                line,
                dict(zip(header, values, strict=True))
                if len(values) == 4
                else f"must have 4 '::'-separated fields, got {len(values)}",
            )
        movies = sibling(path, "movies.dat")
        if movies is not None:
            for _, text in text_lines(movies, "latin-1"):
                parts = text.split("::")
                if len(parts) == 3:
                    texts[parts[0].strip()] = catalog_text({"title": parts[1], "genres": parts[2]})
        return builder, texts
    for line, row in csv_rows(path, header=header, delimiter="\t"):  # ml-100k u.data
        builder.add(line, row)
    items = sibling(path, "u.item")
    if items is not None:
        for _, text in text_lines(items, "latin-1"):
            parts = text.split("|")
            if len(parts) >= 5:
                flags = parts[5:]
                genres = " ".join(g for g, f in zip(_ML_GENRES, flags, strict=False) if f.strip() == "1")
                texts[parts[0].strip()] = catalog_text({"title": parts[1], "genres": genres})
    return builder, texts


# -- entry point ---------------------------------------------------------------------------


def load_dataset(
    path: str | Path,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
    skip_bad: bool = False,
    tie_seed: int | None = 0,
    items: str | Path | Catalog | None = None,
    items_format: str = "auto",
    item_columns: Mapping[str, str] | None = None,
    catalog_scope: str = "interacted",
) -> Dataset:
    """Read a dataset into one stream ordered by time.

    Parameters
    ----------
    path
        The interactions file (plain, gzip, or a zip holding one file).
    format
        One of `FORMATS`; ``auto`` guesses from the name and the first row.
    columns
        Role (``user``, ``item``, ``rating``, ``text``, ``ts``) to column name; overrides
        the format's own names. Without a ``ts`` column the file order is the time order.
    limit
        Keep only the first `limit` interactions in time order.
    skip_bad
        Skip and count rows that cannot be read instead of raising `DatasetError`.
    tie_seed
        Events with the same time are put in an order shuffled with this seed; None keeps
        the file order. Files are often sorted by item or user, and day-granular times
        (Amazon) tie often: the file's order would otherwise leak into the stream.
    items
        An item catalog file (see `load_catalog`), or one already read: its texts and display
        titles are merged over what the format read, the catalog's winning where both have an item.
    items_format, item_columns
        The catalog's format (one of `CATALOG_FORMATS`) and its column mapping (roles ``item``,
        ``title``, ``text``, ``tags``).
    catalog_scope
        ``interacted`` keeps the catalog items the interactions take (a filtered review file,
        such as a 5-core one, names a subset of a shop's items: the others would only be
        noise); ``all`` keeps every catalog item.
    """
    path = Path(path)
    if format not in FORMATS:
        raise DatasetError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if limit is not None and limit <= 0:
        raise DatasetError(f"limit must be a positive number of interactions, got {limit!r}")
    if not path.is_file():
        raise DatasetError(f"dataset must be a readable file, got {str(path)!r}")
    if catalog_scope not in CATALOG_SCOPES:
        raise DatasetError(f"catalog_scope must be one of {', '.join(CATALOG_SCOPES)}, got {catalog_scope!r}")
    catalog = (
        load_catalog(items, items_format, item_columns, skip_bad)
        if items is not None and not isinstance(items, Catalog)
        else items
    )
    given = dict(columns or {})
    for role in given:
        if role not in ROLES:
            raise DatasetError(f"a column mapping role must be one of {', '.join(ROLES)}, got {role!r}")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "mind":
        from streamrec.eval.mind import load_mind  # impressions besides events: a loader of its own

        return _with_catalog(load_mind(path, limit=limit, skip_bad=skip_bad), catalog, catalog_scope)
    texts: dict[str, str] = {}
    if fmt == "movielens":
        builder, texts = _load_movielens(path, given, skip_bad)
    elif fmt == "recbole":
        builder, texts = _load_recbole(path, given, skip_bad)
    else:
        builder = _load_table(path, fmt, given, skip_bad)
    events = builder.events
    if tie_seed is not None:
        random.Random(tie_seed).shuffle(events)
    events.sort(key=lambda e: e.ts)  # stable: ties keep the (shuffled) order
    if limit is not None:
        events = events[:limit]
    data = Dataset(
        name=_dataset_name(path),
        path=path,
        format=fmt,
        interactions=events,
        item_texts=texts,
        n_rows=builder.n_rows,
        n_duplicates=builder.n_duplicates,
        n_bad=builder.n_bad,
        bad_examples=builder.bad_examples,
        limit=limit,
    )
    return _with_catalog(data, catalog, catalog_scope)


def _with_catalog(data: Dataset, catalog: Catalog | None, scope: str) -> Dataset:
    """`data` with the catalog's texts and titles merged over its own."""
    if catalog is None:
        return data
    taken = {e.item for e in data.interactions}
    kept = catalog.items if scope == "all" else catalog.items & taken
    data.item_texts.update((i, t) for i, t in catalog.texts.items() if i in kept)
    data.item_titles.update((i, t) for i, t in catalog.titles.items() if i in kept)
    data.catalog = catalog.path
    data.catalog_counts = {
        "items": len(catalog.items),
        "rows": catalog.n_rows,
        "duplicates": catalog.n_duplicates,
        "bad_rows_skipped": catalog.n_bad,
    }
    data.bad_examples.extend(catalog.bad_examples)
    return data


def _dataset_name(path: Path) -> str:
    name = base_name(path)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if stem.lower() in ("u", "ratings", "reviews", "interactions", "data") and path.parent.name:
        return path.parent.name
    return stem
