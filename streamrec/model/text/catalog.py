"""Item text vectors: the catalog text blended with what reviewers wrote about the item."""

from __future__ import annotations

import numpy as np

from streamrec.model.base import FloatArray

__all__ = ["ItemTexts"]


class ItemTexts:
    """Keeps, per item, the vector of its catalog text and the mean of its review vectors.

    An item's text vector is `normalize(catalog_weight * c + min(n, max_reviews) * r)`
    where `c` is the catalog vector and `r` the mean review vector over `n` reviews.
    Items without a catalog entry are described by their reviews alone, so an item
    becomes searchable by text from its first review, before any click.

    Parameters
    ----------
    catalog_weight
        How many reviews the catalog text is worth.
    max_reviews
        Reviews beyond this many do not outweigh the catalog text further.

    Examples
    --------
    >>> texts = ItemTexts(catalog_weight=1.0)
    >>> texts.add_review("x", np.array([0, 1], dtype=np.float32)).tolist()
    [0.0, 1.0]
    >>> [round(float(v), 3) for v in texts.set_catalog("x", np.array([1, 0], dtype=np.float32))]
    [0.707, 0.707]
    """

    def __init__(self, catalog_weight: float = 3.0, max_reviews: int = 10) -> None:
        self.catalog_weight = catalog_weight
        self.max_reviews = max_reviews
        self._catalog: dict[str, FloatArray] = {}
        self._review_sum: dict[str, FloatArray] = {}
        self._review_n: dict[str, int] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._catalog or item in self._review_sum

    def items(self) -> list[str]:
        """Every item with a vector: a catalog text, reviews, or both."""
        return list(dict.fromkeys([*self._catalog, *self._review_sum]))

    def set_catalog(self, item: str, vector: FloatArray) -> FloatArray:
        self._catalog[item] = np.asarray(vector, dtype=np.float32)
        return self.vector(item)

    def add_review(self, item: str, vector: FloatArray, weight: float = 1.0) -> FloatArray:
        vector = np.asarray(vector, dtype=np.float32) * np.float32(weight)
        if item in self._review_sum:
            self._review_sum[item] = self._review_sum[item] + vector
            self._review_n[item] += 1
        else:
            self._review_sum[item] = vector
            self._review_n[item] = 1
        return self.vector(item)

    def remove_review(self, item: str, vector: FloatArray, weight: float = 1.0) -> FloatArray | None:
        """Take back a review (e.g. its author asked to be forgotten); the new vector, if any."""
        n = self._review_n.get(item, 0)
        if n == 0:
            return None
        if n == 1:
            del self._review_sum[item], self._review_n[item]
        else:
            self._review_sum[item] = self._review_sum[item] - np.asarray(vector, np.float32) * np.float32(
                weight
            )
            self._review_n[item] = n - 1
        return self.vector(item) if item in self else None

    def vector(self, item: str) -> FloatArray:
        parts = []
        if item in self._catalog:
            parts.append(self.catalog_weight * self._catalog[item])
        n = self._review_n.get(item, 0)
        if n:
            parts.append(self._review_sum[item] * np.float32(min(n, self.max_reviews) / n))
        if not parts:
            raise KeyError(item)
        total = np.sum(parts, axis=0)
        norm = float(np.linalg.norm(total))
        unit: FloatArray = (total / norm if norm > 0 else total).astype(np.float32)
        return unit

    def forget(self, item: str) -> None:
        self._catalog.pop(item, None)
        self._review_sum.pop(item, None)
        self._review_n.pop(item, None)
