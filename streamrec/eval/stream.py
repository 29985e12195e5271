"""What the prequential protocol knows at each point of the stream, shared by the recommenders."""

from __future__ import annotations

import numpy as np

from streamrec.model.base import FloatArray, IntArray
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.text.reader import Reading

__all__ = ["StreamState"]


class StreamState:
    """What is known at the current point of the stream, shared read-only by the recommenders.

    Items get dense positions in order of first sight (catalog first), so recommenders
    can keep per-item arrays and return positions.
    """

    def __init__(self, text_dim: int) -> None:
        self.items: list[str] = []
        self.pos: dict[str, int] = {}
        self.item_counts = np.zeros(1024, dtype=np.int64)
        self.user_counts: dict[str, int] = {}
        self.seen: dict[str, dict[int, None]] = {}
        self.ts = 0.0
        self.n_events = 0
        #: Each item's text vector (catalog, folded with its reviews), the yardstick of diversity.
        self.texts = ItemTexts()
        self.text_matrix = np.zeros((1024, text_dim), dtype=np.float32)
        self.has_text = np.zeros(1024, dtype=bool)
        #: How each reader (by its `clauses` mode) read the review of the event being learned.
        self.readings: dict[str, Reading] = {}
        #: Per user, the positions of the items they rated 1-2 so far.
        self.disliked: dict[str, list[int]] = {}

    @property
    def n_items(self) -> int:
        return len(self.items)

    def add_item(self, item: str) -> int:
        pos = self.pos.get(item)
        if pos is None:
            pos = len(self.items)
            self.items.append(item)
            self.pos[item] = pos
            if pos >= len(self.item_counts):
                size = 2 * len(self.item_counts)
                self.item_counts = np.concatenate([self.item_counts, np.zeros(size // 2, dtype=np.int64)])
                self.text_matrix = np.concatenate([self.text_matrix, np.zeros_like(self.text_matrix)])
                self.has_text = np.concatenate([self.has_text, np.zeros_like(self.has_text)])
        return pos

    def set_text(self, pos: int, vector: FloatArray) -> None:
        self.text_matrix[pos] = vector
        self.has_text[pos] = True

    def seen_positions(self, user: str) -> IntArray:
        seen = self.seen.get(user)
        if not seen:
            return np.zeros(0, dtype=np.int64)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    def has_seen(self, user: str, pos: int | None) -> bool:
        seen = self.seen.get(user)
        return pos is not None and seen is not None and pos in seen
