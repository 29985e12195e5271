"""Catalog readers, one per file format: Amazon meta and other tables, MIND news.tsv, RecBole .item."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from streamrec.eval.catalog_entries import Entries
from streamrec.eval.files import Row, csv_header, csv_rows, field_name, json_rows, text_lines
from streamrec.eval.item_texts import (
    catalog_entry,
    catalog_text,
    clean_markup,
    described,
    tag_list,
    title_field,
)
from streamrec.model.errors import DatasetError
from streamrec.model.events.schemas import parse_id

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


def read_table(path: Path, fmt: str, given: Mapping[str, str], entries: Entries) -> None:
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
        description = described(row.get(columns["text"])) if "text" in columns else ""
        tags = tag_list(row.get(columns["tags"])) if "tags" in columns else []
        brand = clean_markup(row.get("brand") or "") if fmt == "amazon-meta" else ""
        entries.add(
            item, *catalog_entry(title, description, tags, fallback=brand), described=bool(description)
        )


def read_mind_news(path: Path, entries: Entries) -> None:
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
        entries.add(item, *catalog_entry(clean_markup(fields[3]), abstract, tags), described=bool(abstract))


def read_recbole_items(path: Path, given: Mapping[str, str], entries: Entries) -> None:
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
        entries.add(item, catalog_text(named), title_field(named))
