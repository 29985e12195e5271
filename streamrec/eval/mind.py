"""MIND (the Microsoft News Dataset) read into one stream: histories, clicks and the lists shown.

``behaviors.tsv`` holds one impression a row, tab-separated: impression id, user id, time
(``MM/DD/YYYY h:mm:ss AM/PM``), the user's history (news ids clicked before, space-separated)
and the impression (``N123-1`` shown and clicked, ``N456-0`` shown and not clicked).
``news.tsv`` beside it holds the news: id, category, subcategory, title, abstract, url and
entities, tab-separated, without a header.

The stream: each user's history clicks are learned just before their first impression, in
history order, flagged `learn_only` (they have no time of their own, so they are never
scored); then each impression's clicks are events at its time. A history repeats in every
row of its user: the first row's is read.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "behaviors.tsv").write_text(
...     "1\\tU1\\t11/11/2019 9:00:00 AM\\tN1 N2\\tN3-1 N4-0\\n"
...     "2\\tU1\\t11/11/2019 9:30:00 AM\\tN1 N2\\tN4-0 N5-1\\n")
>>> _ = (folder / "news.tsv").write_text("N3\\tsports\\t\\tA goal\\tLate, in the rain.\\t\\t[]\\t[]\\n")
>>> data = load_mind(folder / "behaviors.tsv")
>>> [(e.item, e.learn_only) for e in data.interactions]
[('N1', True), ('N2', True), ('N3', False), ('N5', False)]
>>> data.impressions[1].shown, data.impressions[1].clicked, data.item_texts["N3"]
(('N4', 'N5'), ('N5',), 'A goal. Late, in the rain. sports')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from streamrec.eval.files import base_name, sibling, text_lines
from streamrec.eval.interactions import Dataset, Impression, Interaction
from streamrec.model.errors import DatasetError
from streamrec.model.events.schemas import parse_id

__all__ = ["HISTORY_STEP_S", "is_behaviors_line", "load_mind", "read_news"]

#: Seconds between a user's history clicks, the last one this long before their first impression.
HISTORY_STEP_S = 1e-3
_TIME = "%m/%d/%Y %I:%M:%S %p"
_TOKEN = re.compile(r"(\S+)-([01])")
_WHEN = "MM/DD/YYYY h:mm:ss AM/PM"


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    id: str
    user: str
    ts: float
    history: tuple[str, ...]
    shown: tuple[str, ...]
    clicked: tuple[str, ...]


def is_behaviors_line(line: str) -> bool:
    """Whether a line reads as a row of MIND's ``behaviors.tsv``: five tab-separated fields, the
    second a user id (``U…``) and the fifth the impression's ``N…-0``/``N…-1`` tokens.

    >>> is_behaviors_line("7\\tU13740\\t11/11/2019 9:05:58 AM\\tN55189 N42782\\tN55689-1 N35729-0")
    True
    >>> is_behaviors_line("user\\titem\\trating\\tts\\tx")
    False
    """
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 5 or not fields[1].startswith("U"):
        return False
    tokens = fields[4].split()
    return bool(tokens) and all(_TOKEN.fullmatch(t) and t.startswith("N") for t in tokens)


def load_mind(
    behaviors_path: str | Path,
    news_path: str | Path | None = None,
    limit: int | None = None,
    skip_bad: bool = False,
) -> Dataset:
    """Read MIND's ``behaviors.tsv`` (and its news) into a `Dataset` with its impressions.

    Parameters
    ----------
    behaviors_path
        ``behaviors.tsv`` (plain, gzip, or a zip holding it).
    news_path
        The news file; default ``news.tsv`` (or ``.gz``, ``.zip``) beside `behaviors_path`.
        Each news item's text is its title, its abstract where it has one, and its category.
        Without a news file, items have no text.
    limit
        Keep only the first `limit` impressions in time order (and the histories of their users).
    skip_bad
        Skip and count rows that cannot be read instead of raising `DatasetError`.

    Returns
    -------
    Dataset
        `interactions`: history clicks (`learn_only`, just before the user's first impression)
        and each impression's clicks at its time, in time order; `impressions` in time order (ties
        in file order); `item_texts` of the news the stream names; `item_times`: when each of them
        is first shown or clicked, history items at their user's first impression.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "behaviors.tsv"
    >>> _ = path.write_text("1\\tU1\\t11/11/2019 9:00:00 AM\\tN1\\tN2-0 N3-1\\n")
    >>> data = load_mind(path)
    >>> len(data.impressions), len(data.interactions), data.item_texts
    (1, 2, {})
    """
    path = Path(behaviors_path)
    if limit is not None and limit <= 0:
        raise DatasetError(f"limit must be a positive number of impressions, got {limit!r}")
    if not path.is_file():
        raise DatasetError(f"dataset must be a readable file, got {str(path)!r}")
    rows: list[_Row] = []
    n_rows, bad_examples = 0, []
    for line, text in text_lines(path):
        n_rows += 1
        row = _parse(line, text)
        if isinstance(row, str):
            message = f"{path}:{line}: {row}"
            if not skip_bad:
                raise DatasetError(message + " (skip such rows with --skip-bad)")
            bad_examples.append(message)
            continue
        rows.append(row)
    rows.sort(key=lambda r: r.ts)  # stable: rows of the same second keep the file's order
    if limit is not None:
        rows = rows[:limit]

    events: list[Interaction] = []
    impressions: list[Impression] = []
    item_times: dict[str, float] = {}
    with_history: set[str] = set()
    for row in rows:
        if row.user not in with_history:
            with_history.add(row.user)
            n = len(row.history)
            for j, item in enumerate(row.history):
                ts = row.ts - HISTORY_STEP_S * (n - j)
                events.append(Interaction(row.user, item, ts, line=row.line, learn_only=True))
                item_times.setdefault(item, row.ts)
        for item in row.shown:
            item_times.setdefault(item, row.ts)
        events.extend(Interaction(row.user, item, row.ts, line=row.line) for item in row.clicked)
        impressions.append(Impression(row.user, row.ts, row.shown, row.clicked, row.id))
    events.sort(key=lambda e: e.ts)  # stable: a history keeps its order, clicks their row's

    news = Path(news_path) if news_path is not None else sibling(path, "news.tsv")
    texts = read_news(news, set(item_times), skip_bad) if news is not None else {}
    name = base_name(path).rsplit(".", 1)[0]
    return Dataset(
        name=path.parent.name if name.lower() == "behaviors" and path.parent.name else name,
        path=path,
        format="mind",
        interactions=events,
        item_texts=texts,
        n_rows=n_rows,
        n_bad=len(bad_examples),
        bad_examples=bad_examples[:5],
        limit=limit,
        impressions=impressions,
        item_times=item_times,
    )


def read_news(path: Path, wanted: set[str] | None = None, skip_bad: bool = False) -> dict[str, str]:
    """Text per news id of MIND's ``news.tsv``: title, abstract where present, category.

    Only the ids in `wanted` are kept (all when None): the catalog is the news a stream names.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "news.tsv"
    >>> rows = ["N1\\tnews\\t\\tA vote?\\t\\t\\t[]\\t[]", "N2\\tsports\\t\\tA goal\\t\\t\\t[]\\t[]"]
    >>> _ = path.write_text("\\n".join(rows) + "\\n")
    >>> read_news(path, {"N1"})
    {'N1': 'A vote? news'}
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"news must be a readable file, got {str(path)!r}")
    texts: dict[str, str] = {}
    for line, text in text_lines(path):
        fields = text.split("\t")
        if len(fields) < 4 or not fields[0].strip():
            message = (
                f"{path}:{line}: a news row must have at least 4 tab-separated fields (news_id, category, "
                f"subcategory, title), got {len(fields)}: {text[:60]!r}"
            )
            if not skip_bad:
                raise DatasetError(message + " (skip such rows with --skip-bad)")
            continue
        item = fields[0].strip()
        if wanted is not None and item not in wanted:
            continue
        title, category = fields[3].strip(), fields[1].strip()
        abstract = fields[4].strip() if len(fields) > 4 else ""
        texts[item] = _sentences([title, abstract, category])
    return texts


def _sentences(parts: list[str]) -> str:
    """Non-empty parts joined as sentences: a full stop after each that has no end mark."""
    kept = [p for p in parts if p]
    return " ".join(p if p[-1] in ".!?" or n == len(kept) - 1 else p + "." for n, p in enumerate(kept))


def _parse(line: int, text: str) -> _Row | str:
    """One behaviors row, or what is wrong with it."""
    fields = text.split("\t")
    if len(fields) != 5:
        return (
            "a behaviors row must have 5 tab-separated fields (impression_id, user_id, time, history, "
            f"impressions), got {len(fields)}"
        )
    impression_id, user, when, history, shown = fields
    try:
        user = parse_id(user)
    except ValueError as exc:
        return f"user_id {exc}"
    try:
        ts = datetime.strptime(when.strip(), _TIME).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return f"time must be {_WHEN}, got {when!r}"
    items, clicked = [], []
    for token in shown.split():
        match = _TOKEN.fullmatch(token)
        if match is None:
            return f"an impression must be NEWS_ID-1 (clicked) or NEWS_ID-0 (not clicked), got {token!r}"
        items.append(match.group(1))
        if match.group(2) == "1":
            clicked.append(match.group(1))
    if not items:
        return f"impressions must list at least one news id, got {shown!r}"
    return _Row(line, impression_id.strip(), user, ts, tuple(history.split()), tuple(items), tuple(clicked))
