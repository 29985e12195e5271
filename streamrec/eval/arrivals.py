"""Catalog items entering the stream: before it, or mid-stream at their time, as on the items topic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streamrec.eval.interactions import Dataset
from streamrec.eval.stream import StreamState
from streamrec.model.base import FloatArray

#: A catalog item entering mid-stream: its time, id, display title and text vector.
Arrival = tuple[float, str, str, FloatArray | None]


def catalog_arrivals(
    dataset: Dataset, ids: Sequence[str], vectors: Mapping[str, FloatArray]
) -> tuple[dict[str, tuple[str, FloatArray | None]], list[Arrival]]:
    """The catalog items entering before the stream (id -> (display title, vector)), and those
    entering mid-stream, in time order.

    Each item enters as a catalog event before its first interaction, as on the items topic:
    at its time in `Dataset.item_times`, or at its first interaction if that comes earlier;
    items without a time enter before the stream. The title is the display title where one is
    known, else the item's text.
    """
    first_take: dict[str, float] = {}
    for event in dataset.interactions:
        first_take.setdefault(event.item, event.ts)
    at_start: dict[str, tuple[str, FloatArray | None]] = {}
    arrivals: list[Arrival] = []
    for item in ids:
        title = dataset.item_titles.get(item) or dataset.item_texts.get(item) or item
        ts = dataset.item_times.get(item)
        if ts is None:
            at_start[item] = (title, vectors.get(item))
        else:
            arrivals.append((min(ts, first_take.get(item, ts)), item, title, vectors.get(item)))
    arrivals.sort(key=lambda arrival: arrival[0])  # stable: ties keep the catalog order
    return at_start, arrivals


def enter_item(state: StreamState, item: str, vector: FloatArray | None) -> None:
    """A catalog item made known to the stream, with its text vector."""
    pos = state.add_item(item)
    if vector is not None:
        state.set_text(pos, state.texts.set_catalog(item, vector))
