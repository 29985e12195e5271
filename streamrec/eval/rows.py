"""Turning a file's rows into interactions: which column plays which role, and each value read."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from streamrec.eval.files import Row
from streamrec.eval.interactions import Interaction
from streamrec.model.errors import DatasetError
from streamrec.model.events.schemas import parse_id, parse_ts

__all__ = ["ROLES", "RowReader", "parse_columns", "text_of"]

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


def text_of(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _amazon_text(row: Row) -> str | None:
    summary = text_of(row.get("summary"))
    body = text_of(row.get("reviewText"))
    if summary and body:
        return f"{summary}. {body}"
    return summary or body


class RowReader:
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
                text = text_of(row.get(cols["text"])) if "text" in cols else None
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
