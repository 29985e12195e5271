"""Reviews as opinions: whether one reads negative, and what reviewers' texts say of items."""

from __future__ import annotations

from collections.abc import Sequence

from streamrec.model.base import FloatArray
from streamrec.model.serving.texts import TextVectors
from streamrec.model.text.opinions import Opinion
from streamrec.model.text.sentiment import rating_label
from streamrec.model.users.profile import rating_weight

__all__ = ["ItemReviews", "verdict"]


def verdict(rating: float | None, polarity: float | None) -> float:
    """How a review reads, in [-1, 1]: its rating when it has one, else what its text says.

    >>> verdict(5, -0.2), verdict(1, None), verdict(None, 0.4), verdict(None, None)
    (1.0, -1.0, 0.4, 0.0)
    """
    if rating is not None:
        return (float(rating) - 3.0) / 2.0
    return 0.0 if polarity is None else float(polarity)


class ItemReviews(TextVectors):
    """What reviews tell: whether one is a dislike, and what it says of its item's text and aspects."""

    def is_negative(self, rating: float | None, polarity: float | None) -> bool:
        """A rating of 1-2 is; a 3 or no rating is when the text reads negative."""
        label = rating_label(rating)
        if label is not None:
            return label == 0
        return polarity is not None and polarity < self.negative_below

    def on_item_review(
        self,
        item_id: str,
        vector: FloatArray | None,
        rating: float | None = None,
        key: bytes = b"",
        opinions: Sequence[Opinion] = (),
        author: str = "",
    ) -> None:
        """What a reviewer wrote also describes the item (`vector`, in the active encoder's space;
        None: it is in no space that serves), and tells of its aspects."""
        if vector is not None:
            self.fold_review_text(item_id, vector, rating)
        self.popularity.add(item_id)
        if "aspects" in self.opinions and opinions:
            self.reputation.add(key, item_id, opinions, author)

    def fold_review_text(self, item_id: str, vector: FloatArray, rating: float | None = None) -> None:
        """A review's vector into its item's text vector."""
        folded = self.item_texts.add_review(item_id, vector, rating_weight(rating))
        self._index_text([item_id], folded[None, :])
        self.generated.content_changed(item_id)

    def on_item_review_removed(
        self, item_id: str, vector: FloatArray | None, rating: float | None = None, key: bytes = b""
    ) -> None:
        """Take back what a (forgotten) reviewer wrote about the item."""
        self.reputation.remove(key)
        if self.versions.staged is not None:
            self.versions.staged.reviews.pop(key, None)
        if vector is None:
            return
        folded = self.item_texts.remove_review(item_id, vector, rating_weight(rating))
        if folded is not None:
            self._index_text([item_id], folded[None, :])
