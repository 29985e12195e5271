"""The benchmark's events: a real catalog, real clicks and real review text.

Clicks and the catalog come from an interaction log with item text (MovieLens 100K by
default: 100,000 ratings replayed as clicks, 1,682 titles); reviews from an Amazon review
file. Where those files are missing, the demo sample shipped with the package serves for
both, so the benchmark runs from the repository alone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from streamrec.eval.datasets import load_dataset
from streamrec.eval.sample import SAMPLE, load_sample

__all__ = ["AMAZON", "MOVIELENS", "Review", "Workload", "load_workload", "packaged_sample"]

MOVIELENS = Path("ml-100k") / "ml-100k.inter"
AMAZON = Path("amazon-musical-instruments-2014") / "Musical_instruments_reviews.csv.zip"

Event = tuple[str, dict[str, Any], str]


@dataclass(frozen=True)
class Review:
    user: str
    item: str
    text: str
    rating: float | None
    ts: float


@dataclass(frozen=True)
class Workload:
    """What the benchmark replays; `source` says where it came from."""

    catalog: dict[str, str]
    clicks: list[tuple[str, str, float]]
    reviews: list[Review]
    source: str
    #: No click of a later pass lies beyond this time (epoch seconds; default: when it was made).
    horizon: float = field(default_factory=time.time)

    def click(self, i: int) -> tuple[str, str, float]:
        """The `i`-th click of an endless stream: the log, then again with new users.

        Pass `k` of the log renames each user `user~k` and follows pass `k - 1` in time at half
        its pace, so later passes bring new users (the model grows, as in production), no event
        repeats an earlier one (the workers would drop it as a duplicate), and however many
        passes there are, they all fit in one more span of the log after its end, and never go
        past `horizon` (the workers reject events ahead of their clock).
        """
        n = len(self.clicks)
        k, j = divmod(i, n)
        user, item, ts = self.clicks[j]
        if k == 0:
            return user, item, ts
        start, span = self._span
        room = max(0.0, min(span, self.horizon - (start + span)))
        scale = 0.5**k
        later = start + span + room * (1.0 - 2.0 * scale) + (ts - start) / span * room * scale
        return f"{user}~{k}", item, later

    @cached_property
    def _span(self) -> tuple[float, float]:
        times = [ts for _, _, ts in self.clicks]
        return min(times), max(times) - min(times) + 1.0

    def click_events(self, topic: str, start: int, n: int) -> Iterator[Event]:
        for i in range(start, start + n):
            user, item, ts = self.click(i)
            yield topic, {"user_id": user, "item_id": item, "event": "click", "ts": ts}, user

    def review_events(self, topic: str, start: int, n: int) -> Iterator[Event]:
        """Reviews in the file's time order, cycling (with new authors) past the end."""
        total = len(self.reviews)
        for i in range(start, start + n):
            k, j = divmod(i, total)
            r = self.reviews[j]
            user = r.user if k == 0 else f"{r.user}~{k}"
            value: dict[str, Any] = {"user_id": user, "item_id": r.item, "text": r.text, "ts": r.ts}
            if r.rating is not None:
                value["rating"] = r.rating
            yield topic, value, user

    def catalog_events(self, topic: str, items: dict[str, str] | None = None) -> Iterator[Event]:
        for item_id, title in (items if items is not None else self.catalog).items():
            yield topic, {"item_id": item_id, "title": title, "ts": 0.0}, item_id

    def review_catalog(self, n: int) -> dict[str, str]:
        """Catalog entries of the items of the first `n` reviews (Amazon's files carry no titles)."""
        return {r.item: self.catalog.get(r.item, f"item {r.item}") for r in self.reviews[:n]}

    def narrowed(self, n_items: int) -> Workload:
        """Only the clicks on the `n_items` most clicked items: a small catalog, quick to encode."""
        counts = Counter(item for _, item, _ in self.clicks)
        keep = {item for item, _ in counts.most_common(n_items)}
        return replace(
            self,
            catalog={
                i: t for i, t in self.catalog.items() if i in keep or i in {r.item for r in self.reviews}
            },
            clicks=[c for c in self.clicks if c[1] in keep],
        )

    def texts(self, n: int) -> list[str]:
        return [r.text for r in self.reviews[:n]]


def load_workload(
    clicks_path: Path | None = None,
    reviews_path: Path | None = None,
    max_reviews: int = 2_000,
    datasets: Path | None = None,
) -> Workload:
    """Clicks and catalog from `clicks_path`, reviews from `reviews_path`, else from the public
    datasets in `datasets` (`Settings.datasets()`), else from the packaged sample."""
    data = datasets
    if clicks_path is None and data is not None and (data / MOVIELENS).is_file():
        clicks_path = data / MOVIELENS
    if reviews_path is None and data is not None and (data / AMAZON).is_file():
        reviews_path = data / AMAZON
    sample = packaged_sample() if clicks_path is None or reviews_path is None else None
    sources = []
    if clicks_path is not None:
        dataset = load_dataset(clicks_path)
        clicks = [(e.user, e.item, e.ts) for e in dataset.interactions]
        catalog = dict(dataset.item_texts)
        for _, item, _ in clicks:
            catalog.setdefault(item, f"item {item}")
        sources.append(f"clicks: {clicks_path}")
    else:
        assert sample is not None
        catalog, clicks = sample[0], [(r.user, r.item, r.ts) for r in sample[1]]
        sources.append(f"clicks: the packaged sample {SAMPLE}")
    if reviews_path is not None:
        reviews_data = load_dataset(reviews_path)
        reviews = [
            Review(e.user, e.item, e.text, e.rating, e.ts)
            for e in reviews_data.interactions
            if e.text and e.text.strip()
        ][:max_reviews]
        sources.append(f"reviews: {reviews_path}")
    else:
        assert sample is not None
        reviews = sample[1][:max_reviews]
        catalog = {**catalog, **sample[0]}
        sources.append(f"reviews: the packaged sample {SAMPLE}")
    return Workload(catalog=catalog, clicks=clicks, reviews=reviews, source="; ".join(sources))


def packaged_sample() -> tuple[dict[str, str], list[Review]]:
    records = load_sample()
    catalog = {r["item_id"]: r["title"] for r in records if r["type"] == "item"}
    reviews = [
        Review(r["user_id"], r["item_id"], r["text"], r.get("rating"), float(r["ts"]))
        for r in records
        if r["type"] in ("review", "new_user_review")
    ]
    return catalog, reviews
