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

import json
import re
from collections.abc import Mapping
from pathlib import Path

from streamrec.eval.catalog_entries import Catalog, Entries
from streamrec.eval.catalog_readers import read_mind_news, read_recbole_items, read_table
from streamrec.eval.files import member_name, open_text
from streamrec.model.errors import DatasetError

__all__ = [
    "CATALOG_FORMATS",
    "CATALOG_ROLES",
    "detect_catalog_format",
    "load_catalog",
    "parse_item_columns",
]

CATALOG_FORMATS = ("auto", "amazon-meta", "mind-news", "recbole-item", "csv", "jsonl")
CATALOG_ROLES = ("item", "title", "text", "tags")

_NEWS_ID = re.compile(r"N\d+")


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
    entries = Entries(path, fmt, skip_bad)
    if fmt == "mind-news":
        read_mind_news(path, entries)
    elif fmt == "recbole-item":
        read_recbole_items(path, given, entries)
    else:
        read_table(path, fmt, given, entries)
    return entries.catalog
