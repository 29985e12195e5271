"""Item catalogs: what a shop or a news site says of its items, read from one file.

Formats
-------
``amazon-meta``
    Amazon 2018 ``meta_*.json.gz`` JSON lines: ``asin``, ``title`` (often a raw HTML
    fragment: cleaned, and replaced by the description's first sentence when nothing is
    left), ``description`` (a list of strings, or a string), ``category`` (a list), ``brand``.
``mind-news``
    MIND ``news.tsv``, tab-separated without a header: news_id, category, subcategory,
    title, abstract, url, title_entities, abstract_entities.
``recbole-item``
    RecBole ``NAME.item`` atomic file, with a typed ``name:type`` header.
``csv``, ``jsonl``
    Any table, with a column mapping for the roles ``item``, ``title``, ``text`` (the
    description) and ``tags`` (categories: a list, or a ``|``- or ``,``-separated string);
    common names are recognised without one.

Each item's text, the one the encoder reads, is its title, then its description, then
its categories or tags; its display title is a short name for lists. An id read again
keeps the entry with the most text. gzip and zip files are read as the dataset loaders
read them; a row that cannot be read raises `DatasetError` naming its line, or is skipped
and counted with ``skip_bad=True``.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
>>> _ = path.write_text("sku,name,about,genres\\ng1,Guitar World,For musicians.,Music|Magazines\\n")
>>> catalog = load_catalog(path, columns={"item": "sku", "text": "about"})
>>> catalog.texts["g1"], catalog.titles["g1"]
('Guitar World. For musicians. Music, Magazines', 'Guitar World')
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrec.eval.files import (
    Row,
    csv_header,
    csv_rows,
    field_name,
    json_rows,
    member_name,
    open_text,
    text_lines,
)
from streamrec.eval.rows import text_of
from streamrec.model.errors import DatasetError
from streamrec.model.events.schemas import parse_id

__all__ = [
    "CATALOG_FORMATS",
    "CATALOG_ROLES",
    "Catalog",
    "catalog_text",
    "clean_markup",
    "detect_catalog_format",
    "load_catalog",
    "parse_item_columns",
]

CATALOG_FORMATS = ("auto", "amazon-meta", "mind-news", "recbole-item", "csv", "jsonl")
CATALOG_ROLES = ("item", "title", "text", "tags")

#: The encoder reads 128 tokens of a text (a few hundred characters): longer descriptions are
#: cut here, so that a catalog of long texts costs neither memory nor tokenizer time for nothing.
MAX_TEXT_CHARS = 2000
#: Length of a display title made from a description's first sentence.
MAX_TITLE_CHARS = 80

#: Column names recognised for each role when no mapping names one.
_GUESSES: Mapping[str, tuple[str, ...]] = {
    "item": (
        "item_id",
        "itemId",
        "item",
        "asin",
        "parent_asin",
        "news_id",
        "book_id",
        "movieId",
        "movie_id",
        "product_id",
        "iid",
        "id",
    ),
    "title": ("title", "name", "movie_title", "item_name", "product_title"),
    "text": ("description", "abstract", "text", "body", "overview", "plot"),
    "tags": ("categories", "category", "genres", "genre", "tags", "class"),
}
_AMAZON_META = {"item": "asin", "title": "title", "text": "description", "tags": "category"}
_TITLE_KEYS = ("movie_title", "title", "name", "item_name")
_NEWS_ID = re.compile(r"N\d+")
# Tags, whole or cut off at either end (Amazon titles are often `<span class="..."`).
_MARKUP = re.compile(r"<[A-Za-z/!][^<>]*>|<[A-Za-z/!][^<>]*$|^[^<>]*[\"']\s*/?>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Catalog:
    """What a catalog file says of its items.

    Examples
    --------
    >>> catalog = Catalog(Path("items.csv"), "csv", texts={"a": "A. About a"}, titles={"a": "A"})
    >>> sorted(catalog.items), catalog.n_duplicates
    (['a'], 0)
    """

    path: Path
    format: str
    #: The text the encoder reads per item: title, description, categories or tags.
    texts: dict[str, str] = field(default_factory=dict)
    #: A short display title per item, where one could be found.
    titles: dict[str, str] = field(default_factory=dict)
    #: Items whose entry has a description (beyond a title and tags).
    described: set[str] = field(default_factory=set)
    n_rows: int = 0
    #: Rows whose id an earlier row had (the entry with the most text is kept).
    n_duplicates: int = 0
    n_bad: int = 0
    #: First few skipped rows' messages, to show what `skip_bad` dropped.
    bad_examples: list[str] = field(default_factory=list)

    @property
    def items(self) -> set[str]:
        """Every item the catalog says something of."""
        return set(self.texts) | set(self.titles)


def clean_markup(value: Any) -> str:
    """Text without HTML tags (whole or cut off) and entities, whitespace collapsed.

    >>> clean_markup('<span class="a-size-medium a-color-secondary"')
    ''
    >>> clean_markup("Arts, Music &amp; <i>Photography</i>")
    'Arts, Music & Photography'
    """
    text = _MARKUP.sub(" ", str(value))
    return " ".join(html.unescape(text).split())


def catalog_text(fields: Mapping[str, Any]) -> str:
    """`Title (year). genre, genre` from whatever item fields there are.

    >>> catalog_text({"movie_title": "Toy Story", "release_year": "1995", "class": "Animation Comedy"})
    'Toy Story (1995). Animation, Comedy'
    """
    title = _title_field(fields)
    year = next((str(fields[k]).strip() for k in ("release_year", "year") if text_of(fields.get(k))), "")
    genre_keys = ("class", "genre", "genres", "categories")
    genres = next((str(fields[k]).strip() for k in genre_keys if text_of(fields.get(k))), "")
    text = title or " ".join(str(v).strip() for v in fields.values() if text_of(v))
    if year and year not in text:
        text = f"{text} ({year})"
    names = [g for g in re.split(r"[|\s]+", genres) if g and g != "(no"]
    if names:
        text = f"{text}. " + ", ".join(names)
    return text.strip()


def _title_field(fields: Mapping[str, Any]) -> str:
    return next((str(fields[k]).strip() for k in _TITLE_KEYS if text_of(fields.get(k))), "")


def parse_item_columns(spec: str | None) -> dict[str, str]:
    """Parse ``item=COL,title=COL,text=COL,tags=COL`` into a role-to-column mapping.

    >>> parse_item_columns("item=sku, title=name")
    {'item': 'sku', 'title': 'name'}
    """
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        role, sep, column = (s.strip() for s in part.partition("="))
        if not sep or not column:
            raise DatasetError(f"an item column mapping entry must be ROLE=COLUMN, got {part!r}")
        out[_role(role)] = column
    return out


def _role(role: str) -> str:
    if role not in CATALOG_ROLES:
        raise DatasetError(
            f"an item column mapping role must be one of {', '.join(CATALOG_ROLES)}, got {role!r}"
        )
    return role


def detect_catalog_format(path: Path) -> str:
    """Guess a catalog file's format from its name and its first row.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "meta_Books.json"
    >>> _ = path.write_text('{"asin": "B1", "title": "A book", "category": ["Books"]}\\n')
    >>> detect_catalog_format(path)
    'amazon-meta'
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"an item catalog must be a readable file, got {str(path)!r}")
    lower = member_name(path).lower()
    if lower.endswith(".item"):
        return "recbole-item"
    with open_text(path) as stream:
        first = next((line for line in stream if line.strip()), "")
    if lower.endswith((".json", ".jsonl", ".ndjson")) or first.lstrip().startswith("{"):
        try:
            record = json.loads(first)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: an item catalog must be JSON lines, got a first line {first[:60]!r}")
        if "reviewerID" in record:
            raise DatasetError(f"{path}: an item catalog must describe items, got a review row (reviewerID)")
        if "asin" in record and (
            lower.startswith("meta_") or {"title", "description", "category"} & set(record)
        ):
            return "amazon-meta"
        return "jsonl"
    fields = first.rstrip("\r\n").split("\t")
    if lower.endswith("news.tsv") or (len(fields) >= 4 and _NEWS_ID.fullmatch(fields[0].strip())):
        return "mind-news"
    return "csv"


class _Entries:
    """The catalog being read: one entry per id, bad rows counted or raised."""

    def __init__(self, path: Path, fmt: str, skip_bad: bool) -> None:
        self.catalog = Catalog(path, fmt)
        self.skip_bad = skip_bad
        self._sizes: dict[str, int] = {}

    def bad(self, line: int, message: str) -> None:
        text = f"{self.catalog.path}:{line}: {message}"
        if not self.skip_bad:
            raise DatasetError(text + " (skip such rows with --skip-bad)")
        self.catalog.n_bad += 1
        if len(self.catalog.bad_examples) < 5:
            self.catalog.bad_examples.append(text)

    def add(self, item: str, text: str, title: str, described: bool = False) -> None:
        """One entry of `item`; of entries repeating an id, the one with the most text is kept."""
        # Cut at a fixed length: see MAX_TEXT_CHARS.
        text = text[:MAX_TEXT_CHARS].rstrip()
        catalog = self.catalog
        if item in self._sizes:
            catalog.n_duplicates += 1
            if len(text) <= self._sizes[item]:
                return
        self._sizes[item] = len(text)
        for values, value in ((catalog.texts, text), (catalog.titles, title)):
            if value:
                values[item] = value
            else:
                values.pop(item, None)
        if described:
            catalog.described.add(item)
        else:
            catalog.described.discard(item)


def _entry(title: str, description: str, tags: Iterable[str], fallback: str = "") -> tuple[str, str]:
    """The text (title, description, tags) and the display title: `title`, else the description's
    first sentence, else `fallback`."""
    text = _joined([title, description, ", ".join(dict.fromkeys(t for t in tags if t))])
    return text, title or _first_sentence(description) or fallback


def _joined(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        if part:
            out = part if not out else f"{out}{' ' if out[-1] in '.!?:;' else '. '}{part}"
    return out


def _first_sentence(text: str) -> str:
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".")
    if len(sentence) <= MAX_TITLE_CHARS:
        return sentence
    cut = sentence[: MAX_TITLE_CHARS - 1]
    space = cut.rfind(" ")
    if space > MAX_TITLE_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _described(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(part for part in (clean_markup(v) for v in value if v is not None) if part)
    return clean_markup(value)


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        # Amazon 2014 metadata nests category paths: one level is flattened.
        raw = [v for part in value for v in (part if isinstance(part, list | tuple) else [part])]
    else:
        text = str(value)
        raw = text.split("|") if "|" in text else text.split(",")
    return [tag for tag in (clean_markup(v) for v in raw if v is not None) if tag]


# -- readers per format ----------------------------------------------------------------------


def _resolve(
    path: Path, available: list[str], given: Mapping[str, str], defaults: Mapping[str, str]
) -> dict[str, str]:
    present = set(available)
    columns = dict(defaults)
    for role, names in _GUESSES.items():
        if role not in columns and role not in given:
            found = next((name for name in names if name in present), None)
            if found is not None:
                columns[role] = found
    columns.update(given)
    if "item" not in columns:
        raise DatasetError(
            f"{path}: the item column mapping must name item (e.g. --item-columns item=COL,title=COL), "
            f"got columns {available[:20]!r}"
        )
    if not {"title", "text", "tags"} & set(columns):
        raise DatasetError(
            f"{path}: the item column mapping must name a title, text or tags column "
            f"(e.g. --item-columns title=COL,text=COL), got columns {available[:20]!r}"
        )
    return columns


def _read_table(path: Path, fmt: str, given: Mapping[str, str], entries: _Entries) -> None:
    rows: Iterator[tuple[int, Row | str]]
    defaults = _AMAZON_META if fmt == "amazon-meta" else {}
    columns: dict[str, str] | None = None
    if fmt in ("amazon-meta", "jsonl"):
        rows = json_rows(path)  # columns resolved at the first record: JSON lines name them there
    else:
        rows = csv_rows(path)
        columns = _resolve(path, csv_header(path), given, defaults)
    for line, row in rows:
        entries.catalog.n_rows += 1
        if isinstance(row, str):
            entries.bad(line, f"row {row}")
            continue
        if columns is None:
            columns = _resolve(path, list(row), given, defaults)
        try:
            item = parse_id(row.get(columns["item"]))
        except ValueError as exc:
            entries.bad(line, f"{exc} (column {columns['item']!r})")
            continue
        title = clean_markup(row.get(columns["title"]) or "") if "title" in columns else ""
        description = _described(row.get(columns["text"])) if "text" in columns else ""
        tags = _tags(row.get(columns["tags"])) if "tags" in columns else []
        brand = clean_markup(row.get("brand") or "") if fmt == "amazon-meta" else ""
        entries.add(item, *_entry(title, description, tags, fallback=brand), described=bool(description))


def _read_mind(path: Path, entries: _Entries) -> None:
    # Split by hand: MIND titles hold bare quotes, which a csv reader would take as quoting.
    for line, text in text_lines(path):
        entries.catalog.n_rows += 1
        fields = text.split("\t")
        if not 4 <= len(fields) <= 8:
            entries.bad(line, f"row must have 8 tab-separated fields, got {len(fields)}")
            continue
        try:
            item = parse_id(fields[0])
        except ValueError as exc:
            entries.bad(line, str(exc))
            continue
        abstract = clean_markup(fields[4]) if len(fields) > 4 else ""
        tags = [clean_markup(f) for f in fields[1:3]]
        entries.add(item, *_entry(clean_markup(fields[3]), abstract, tags), described=bool(abstract))


def _read_recbole(path: Path, given: Mapping[str, str], entries: _Entries) -> None:
    header = [field_name(h) for h in csv_header(path, "\t")]
    id_field = given.get("item") or ("item_id" if "item_id" in header else header[0])
    for line, row in csv_rows(path, header=header, delimiter="\t"):
        if line == 1:
            continue  # the typed header
        entries.catalog.n_rows += 1
        if isinstance(row, str):
            entries.bad(line, f"row {row}")
            continue
        named = dict(row)
        try:
            item = parse_id(named.pop(id_field, None))
        except ValueError as exc:
            entries.bad(line, f"{exc} (column {id_field!r})")
            continue
        entries.add(item, catalog_text(named), _title_field(named))


# -- entry point ---------------------------------------------------------------------------


def load_catalog(
    path: str | Path,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    skip_bad: bool = False,
) -> Catalog:
    """Read an item catalog: each item's text and display title.

    Parameters
    ----------
    path
        The catalog file (plain, gzip, or a zip holding one file).
    format
        One of `CATALOG_FORMATS`; ``auto`` guesses from the name and the first row.
    columns
        Role (``item``, ``title``, ``text``, ``tags``) to column name, for ``csv`` and
        ``jsonl`` (and the item id column of ``recbole-item``); overrides the guessed names.
    skip_bad
        Skip and count rows that cannot be read instead of raising `DatasetError`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "news.tsv"
    >>> _ = path.write_text("N1\\tsports\\tgolf\\tA long putt\\tShe holed it.\\t\\t[]\\t[]\\n")
    >>> catalog = load_catalog(path)
    >>> catalog.format, catalog.texts["N1"]
    ('mind-news', 'A long putt. She holed it. sports, golf')
    """
    path = Path(path)
    if format not in CATALOG_FORMATS:
        raise DatasetError(
            f"an item catalog format must be one of {', '.join(CATALOG_FORMATS)}, got {format!r}"
        )
    if not path.is_file():
        raise DatasetError(f"an item catalog must be a readable file, got {str(path)!r}")
    given = {_role(role): column for role, column in (columns or {}).items()}
    fmt = detect_catalog_format(path) if format == "auto" else format
    entries = _Entries(path, fmt, skip_bad)
    if fmt == "mind-news":
        _read_mind(path, entries)
    elif fmt == "recbole-item":
        _read_recbole(path, given, entries)
    else:
        _read_table(path, fmt, given, entries)
    return entries.catalog
