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
import gzip
import io
import json
import math
import random
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from streamrec.model.errors import DatasetError
from streamrec.model.schemas import parse_id, parse_ts

__all__ = [
    "FORMATS",
    "ROLES",
    "Dataset",
    "Interaction",
    "detect_format",
    "load_dataset",
    "parse_columns",
]

FORMATS = ("auto", "movielens", "recbole", "amazon-csv", "amazon-jsonl", "goodreads", "csv", "jsonl")
ROLES = ("user", "item", "rating", "text", "ts")

#: Column names recognised for each role when no mapping names one.
_GUESSES: Mapping[str, tuple[str, ...]] = {
    "user": ("user_id", "userId", "user", "reviewerID", "customer_id", "uid", "visitorid"),
    "item": ("item_id", "itemId", "item", "asin", "book_id", "movieId", "product_id", "parent_asin", "iid"),
    "rating": ("rating", "overall", "score", "stars", "star_rating"),
    "text": ("text", "review_text", "reviewText", "review", "review_body", "comment", "body"),
    "ts": ("ts", "timestamp", "time", "unixReviewTime", "date_added", "date", "datetime", "created_at"),
}

#: The column mapping each named format implies.
_FORMAT_COLUMNS: Mapping[str, Mapping[str, str]] = {
    "amazon-csv": {"user": "reviewerID", "item": "asin", "rating": "overall", "ts": "unixReviewTime"},
    "amazon-jsonl": {"user": "reviewerID", "item": "asin", "rating": "overall", "ts": "unixReviewTime"},
    "goodreads": {
        "user": "user_id",
        "item": "book_id",
        "rating": "rating",
        "text": "review_text",
        "ts": "date_added",
    },
}


@dataclass(frozen=True, slots=True)
class Interaction:
    """One event of the stream: a user interacted with an item, maybe rating or reviewing it."""

    user: str
    item: str
    ts: float
    rating: float | None = None
    text: str | None = None
    #: Line of the file where the row starts (1-based), for messages.
    line: int = 0


@dataclass
class Dataset:
    """A time-ordered interaction stream and what is known of its items.

    Examples
    --------
    >>> data = Dataset("toy", Path("toy.csv"), "csv", [Interaction("ann", "a", 1.0, 4.0)])
    >>> data.summary()["n_users"], data.summary()["with_rating"]
    (1, 1)
    """

    name: str
    path: Path
    format: str
    interactions: list[Interaction]
    #: Catalog text per item (titles, genres) where the dataset has any.
    item_texts: dict[str, str] = field(default_factory=dict)
    n_rows: int = 0
    n_duplicates: int = 0
    n_bad: int = 0
    #: First few skipped rows' messages, to show what `skip_bad` dropped.
    bad_examples: list[str] = field(default_factory=list)
    limit: int | None = None

    def summary(self) -> dict[str, Any]:
        events = self.interactions
        ratings = [e.rating for e in events if e.rating is not None]
        return {
            "name": self.name,
            "path": str(self.path),
            "format": self.format,
            "n_rows": self.n_rows,
            "n_interactions": len(events),
            "n_users": len({e.user for e in events}),
            "n_items": len({e.item for e in events}),
            "n_catalog_items": len(self.item_texts),
            "with_rating": len(ratings),
            "with_text": sum(1 for e in events if e.text),
            "rating_min": min(ratings) if ratings else None,
            "rating_max": max(ratings) if ratings else None,
            "ts_min": events[0].ts if events else None,
            "ts_max": events[-1].ts if events else None,
            "duplicates_dropped": self.n_duplicates,
            "bad_rows_skipped": self.n_bad,
            "limit": self.limit,
        }


# -- columns and formats -----------------------------------------------------------


def parse_columns(spec: str | None) -> dict[str, str]:
    """Parse ``user=COL,item=COL,...`` into a role-to-column mapping.

    >>> parse_columns("user=uid, item=sku,ts=when")
    {'user': 'uid', 'item': 'sku', 'ts': 'when'}
    """
    out: dict[str, str] = {}
    if not spec:
        return out
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        role, sep, column = part.partition("=")
        role, column = role.strip(), column.strip()
        if not sep or not column:
            raise DatasetError(f"a column mapping entry must be ROLE=COLUMN, got {part!r}")
        if role not in ROLES:
            raise DatasetError(f"a column mapping role must be one of {', '.join(ROLES)}, got {role!r}")
        out[role] = column
    return out


def _base_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _member_name(path: Path) -> str:
    """The name of the data inside the file: a zip's member, else the name less `.gz`/`.zip`."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _zip_member(archive, path)
    return _base_name(path)


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
    name = _member_name(path)
    lower = name.lower()
    if lower.endswith(".inter"):
        return "recbole"
    if lower in ("u.data", "ratings.dat"):
        return "movielens"
    with _open_text(path) as stream:
        first = ""
        for line in stream:
            if line.strip():
                first = line
                break
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
    header = next(csv.reader([first], dialect=_sniff(first)), [])
    if {"reviewerID", "asin"} <= set(header):
        return "amazon-csv"
    if {"userId", "movieId"} <= set(header) and lower == "ratings.csv":
        return "movielens"
    return "csv"


# -- opening files -----------------------------------------------------------------


def _zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    members = [
        m.filename
        for m in archive.infolist()
        if not m.is_dir() and not m.filename.startswith("__MACOSX/") and not m.filename.endswith(".DS_Store")
    ]
    if len(members) != 1:
        raise DatasetError(f"{path}: a zip must hold exactly one data file, got {members[:5]!r}")
    return members[0]


def _open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if magic == b"PK\x03\x04":
        archive = zipfile.ZipFile(path)
        return archive.open(_zip_member(archive, path))
    return open(path, "rb")


def _open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    # Undecodable bytes become U+FFFD: one odd character must not lose a whole review.
    return io.TextIOWrapper(_open_binary(path), encoding=encoding, errors="replace", newline="")


def _sniff(first_line: str) -> type[csv.Dialect]:
    if "\t" in first_line and first_line.count("\t") >= first_line.count(","):
        return csv.excel_tab
    return csv.excel


# -- reading rows --------------------------------------------------------------------

Row = Mapping[str, Any]

# Review texts can be long; the csv module's default field limit (128 KiB) is not a data error.
csv.field_size_limit(1 << 26)


def _field_name(header: str) -> str:
    """A RecBole header field `name:type` without its type."""
    return header.strip().split(":", 1)[0]


def _csv_header(path: Path, delimiter: str | None = None) -> list[str]:
    with _open_text(path) as stream:
        first = stream.readline()
    dialect = _sniff(first)
    header = next(csv.reader([first], dialect=dialect, delimiter=delimiter or dialect.delimiter), [])
    return [h.strip() for h in header]


def _csv_rows(
    path: Path,
    header: list[str] | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, Row | str]]:
    """Yield `(line, row)` where the row starts; a row is a str (what is wrong) when it cannot be split.

    Without `header`, the first line is the header.
    """
    with _open_text(path, encoding) as stream:
        first = stream.readline()
        dialect = _sniff(first)
        reader = csv.reader(_chain(first, stream), dialect=dialect, delimiter=delimiter or dialect.delimiter)
        line = 0
        if header is None:
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                return
            line = reader.line_num
        while True:
            start = line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                yield start, f"cannot be split into fields: {exc}"
                continue
            line = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            if len(values) != len(header):
                yield start, f"must have {len(header)} fields, got {len(values)}"
                continue
            yield start, dict(zip(header, values, strict=True))


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


def _json_rows(path: Path) -> Iterator[tuple[int, Row | str]]:
    with _open_text(path) as stream:
        for line, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                yield line, f"must be a JSON object, got a parse error: {exc}"
                continue
            if not isinstance(record, dict):
                yield line, f"must be a JSON object, got {type(record).__name__}"
                continue
            yield line, record


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    with _open_text(path, encoding) as stream:
        for line, text in enumerate(stream, start=1):
            text = text.rstrip("\r\n")
            if text.strip():
                yield line, text


# -- turning rows into interactions ----------------------------------------------------

_GOODREADS_DATE = "%a %b %d %H:%M:%S %z %Y"


def _parse_time(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip()
        # Goodreads writes dates as `Tue Aug 15 13:39:31 -0700 2017`.
        if text[:3].isalpha():
            try:
                return datetime.strptime(text, _GOODREADS_DATE).timestamp()
            except ValueError:
                pass
    return parse_ts(value)


def _parse_rating(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"rating must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"rating must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"rating must be a finite number, got {value!r}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _amazon_text(row: Row) -> str | None:
    summary = _text(row.get("summary"))
    body = _text(row.get("reviewText"))
    if summary and body:
        return f"{summary}. {body}"
    return summary or body


class _Builder:
    """Turns rows into interactions, counting duplicates and bad rows.

    The column mapping is resolved at the first readable row, so that JSON lines,
    whose names are only known from a record, and tables share one path.
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        given: Mapping[str, str],
        skip_bad: bool,
        header: list[str] | None = None,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.given = given
        self.skip_bad = skip_bad
        self.columns: dict[str, str] | None = None
        self.text_of: Callable[[Row], str | None] | None = None
        if header is not None:
            self._resolve(header)
        self.events: list[Interaction] = []
        self.seen: set[tuple[str, str, float, float | None, str | None]] = set()
        self.n_rows = 0
        self.n_duplicates = 0
        self.n_bad = 0
        self.bad_examples: list[str] = []

    def _resolve(self, available: list[str]) -> dict[str, str]:
        columns = dict(_FORMAT_COLUMNS.get(self.fmt, {}))
        present = set(available)
        for role, names in _GUESSES.items():
            if role not in columns and role not in self.given:
                found = next((name for name in names if name in present), None)
                if found is not None:
                    columns[role] = found
        columns.update(self.given)
        missing = [role for role in ("user", "item") if role not in columns]
        if missing:
            raise DatasetError(
                f"{self.path}: the column mapping must name {' and '.join(missing)} "
                f"(e.g. --columns user=COL,item=COL), got columns {available[:20]!r}"
            )
        if self.fmt.startswith("amazon") and "text" not in self.given:
            self.text_of = _amazon_text
        self.columns = columns
        return columns

    def bad(self, line: int, message: str) -> None:
        text = f"{self.path}:{line}: {message}"
        if not self.skip_bad:
            raise DatasetError(text + " (skip such rows with --skip-bad)")
        self.n_bad += 1
        if len(self.bad_examples) < 5:
            self.bad_examples.append(text)

    def add(self, line: int, row: Row | str) -> None:
        self.n_rows += 1
        if isinstance(row, str):
            self.bad(line, f"row {row}")
            return
        cols = self.columns if self.columns is not None else self._resolve(list(row))
        try:
            user = parse_id(self._get(row, cols, "user"))
            item = parse_id(self._get(row, cols, "item"))
            # Without a time column the file order is the time order.
            ts = _parse_time(self._get(row, cols, "ts")) if "ts" in cols else float(self.n_rows)
            rating = _parse_rating(row.get(cols["rating"])) if "rating" in cols else None
            if rating == 0.0 and self.fmt == "goodreads":
                rating = None  # Goodreads writes 0 for "no rating"
            if self.text_of is not None:
                text = self.text_of(row)
            else:
                text = _text(row.get(cols["text"])) if "text" in cols else None
        except (ValueError, TypeError) as exc:
            self.bad(line, str(exc))
            return
        except KeyError as exc:
            self.bad(line, str(exc.args[0]))
            return
        key = (user, item, ts, rating, text)
        if key in self.seen:
            self.n_duplicates += 1
            return
        self.seen.add(key)
        self.events.append(Interaction(user, item, ts, rating, text, line))

    @staticmethod
    def _get(row: Row, cols: Mapping[str, str], role: str) -> Any:
        column = cols[role]
        if column not in row or row[column] is None:
            raise KeyError(f"column {column!r} ({role}) must be present, got {sorted(row)[:12]!r}")
        return row[column]


# -- loaders per format ----------------------------------------------------------------------


def _load_table(path: Path, fmt: str, given: Mapping[str, str], skip_bad: bool) -> _Builder:
    if fmt in ("jsonl", "amazon-jsonl", "goodreads"):
        builder = _Builder(path, fmt, given, skip_bad)
        rows = _json_rows(path)
    else:
        builder = _Builder(path, fmt, given, skip_bad, header=_csv_header(path))
        rows = _csv_rows(path)
    for line, row in rows:
        builder.add(line, row)
    return builder


def _load_recbole(path: Path, given: Mapping[str, str], skip_bad: bool) -> tuple[_Builder, dict[str, str]]:
    header = [_field_name(h) for h in _csv_header(path, "\t")]
    builder = _Builder(path, "recbole", given, skip_bad, header=header)
    for line, row in _csv_rows(path, header=header, delimiter="\t"):
        if line == 1:
            continue  # the typed header
        builder.add(line, row)
    texts: dict[str, str] = {}
    item_file = _sibling(path, _base_name(path)[: -len(".inter")] + ".item")
    if item_file is not None and builder.columns is not None:
        fields = [_field_name(h) for h in _csv_header(item_file, "\t")]
        item_field = builder.columns["item"]
        id_field = item_field if item_field in fields else fields[0]
        for line, row in _csv_rows(item_file, header=fields, delimiter="\t"):
            if line == 1 or isinstance(row, str):
                continue  # the typed header, or a row that is not worth failing the run for
            named = dict(row)
            item = _text(named.pop(id_field, None))
            if item:
                texts[item] = _catalog_text(named)
    return builder, texts


def _catalog_text(fields: Mapping[str, Any]) -> str:
    """`Title (year). genre, genre` from whatever item fields there are."""
    title = next(
        (
            str(fields[k]).strip()
            for k in ("movie_title", "title", "name", "item_name")
            if _text(fields.get(k))
        ),
        "",
    )
    year = next((str(fields[k]).strip() for k in ("release_year", "year") if _text(fields.get(k))), "")
    genres = next(
        (str(fields[k]).strip() for k in ("class", "genre", "genres", "categories") if _text(fields.get(k))),
        "",
    )
    text = title or " ".join(str(v).strip() for v in fields.values() if _text(v))
    if year and year not in text:
        text = f"{text} ({year})"
    names = [g for g in re.split(r"[|\s]+", genres) if g and g != "(no"]
    if names:
        text = f"{text}. " + ", ".join(names)
    return text.strip()


def _sibling(path: Path, name: str) -> Path | None:
    for candidate in (path.with_name(name), path.with_name(name + ".gz"), path.with_name(name + ".zip")):
        if candidate.is_file():
            return candidate
    return None


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


def _load_movielens(path: Path, given: Mapping[str, str], skip_bad: bool) -> tuple[_Builder, dict[str, str]]:
    name = _base_name(path).lower()
    texts: dict[str, str] = {}
    if name.endswith(".csv"):  # ml-latest, ml-20m, ml-25m
        columns = {"user": "userId", "item": "movieId", "rating": "rating", "ts": "timestamp", **given}
        builder = _load_table(path, "csv", columns, skip_bad)
        movies = _sibling(path, "movies.csv")
        if movies is not None:
            for _, row in _csv_rows(movies):
                if not isinstance(row, str) and "movieId" in row:
                    texts[row["movieId"].strip()] = _catalog_text(row)
        return builder, texts
    header = list(_ML_COLUMNS)
    builder = _Builder(path, "movielens", {**_ML_COLUMNS, **given}, skip_bad, header=header)
    if name.endswith(".dat"):  # ml-1m, ml-10m
        for line, text in _lines(path):
            values = text.split("::")
            builder.add(
                line,
                dict(zip(header, values, strict=True))
                if len(values) == 4
                else f"must have 4 '::'-separated fields, got {len(values)}",
            )
        movies = _sibling(path, "movies.dat")
        if movies is not None:
            for _, text in _lines(movies, "latin-1"):
                parts = text.split("::")
                if len(parts) == 3:
                    texts[parts[0].strip()] = _catalog_text({"title": parts[1], "genres": parts[2]})
        return builder, texts
    for line, row in _csv_rows(path, header=header, delimiter="\t"):  # ml-100k u.data
        builder.add(line, row)
    items = _sibling(path, "u.item")
    if items is not None:
        for _, text in _lines(items, "latin-1"):
            parts = text.split("|")
            if len(parts) >= 5:
                flags = parts[5:]
                genres = " ".join(g for g, f in zip(_ML_GENRES, flags, strict=False) if f.strip() == "1")
                texts[parts[0].strip()] = _catalog_text({"title": parts[1], "genres": genres})
    return builder, texts


# -- entry point ---------------------------------------------------------------------------


def load_dataset(
    path: str | Path,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
    skip_bad: bool = False,
    tie_seed: int | None = 0,
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
    """
    path = Path(path)
    if format not in FORMATS:
        raise DatasetError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if limit is not None and limit <= 0:
        raise DatasetError(f"limit must be a positive number of interactions, got {limit!r}")
    if not path.is_file():
        raise DatasetError(f"dataset must be a readable file, got {str(path)!r}")
    given = dict(columns or {})
    for role in given:
        if role not in ROLES:
            raise DatasetError(f"a column mapping role must be one of {', '.join(ROLES)}, got {role!r}")
    fmt = detect_format(path) if format == "auto" else format
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
    return Dataset(
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


def _dataset_name(path: Path) -> str:
    name = _base_name(path)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if stem.lower() in ("u", "ratings", "reviews", "interactions", "data") and path.parent.name:
        return path.parent.name
    return stem
