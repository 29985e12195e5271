"""The stream an evaluation replays: interactions in time order, and what is known of items."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Dataset", "Impression", "Interaction"]


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
    #: Learned, never scored: a click known from before the stream (a history), without a time of its own.
    learn_only: bool = False


@dataclass(frozen=True, slots=True)
class Impression:
    """A list shown to a user: every candidate in `shown` (in its order), those taken in `clicked`."""

    user: str
    ts: float
    shown: tuple[str, ...]
    clicked: tuple[str, ...]
    #: The dataset's id of the impression.
    id: str = ""


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
    #: Lists shown to users, in time order, where the dataset logs them (MIND).
    impressions: list[Impression] = field(default_factory=list)
    #: Per item, when it was first seen in the stream (shown, taken or known from a history): it
    #: enters the catalog then, in event time; items absent from it enter before the first event.
    item_times: dict[str, float] = field(default_factory=dict)
    #: Display title per item, where one is known (an item catalog's).
    item_titles: dict[str, str] = field(default_factory=dict)
    #: The item catalog file whose texts and titles were merged in, if any.
    catalog: Path | None = None
    #: What reading that file found: ``items``, ``rows``, ``duplicates``, ``bad_rows_skipped``.
    catalog_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        events = self.interactions
        ratings = [e.rating for e in events if e.rating is not None]
        taken = {e.item for e in events}
        return {
            "name": self.name,
            "path": str(self.path),
            "format": self.format,
            "n_rows": self.n_rows,
            "n_interactions": len(events),
            "n_users": len({e.user for e in events}),
            "n_items": len(taken),
            "n_catalog_items": len(self.item_texts),
            "catalog": str(self.catalog) if self.catalog is not None else None,
            "n_catalog_items_taken": len(taken & (self.item_texts.keys() | self.item_titles.keys())),
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
