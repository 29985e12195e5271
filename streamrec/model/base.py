"""Protocols for the swappable parts: recommenders, text encoders, vector indexes."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["DoubleArray", "FloatArray", "Hit", "IntArray", "Ranker", "TextEncoder", "VectorIndex"]

#: A search result: `(id, score)`.
Hit = tuple[str, float]

#: Vectors and matrices of vectors: float32 everywhere they are stored or searched.
FloatArray = npt.NDArray[np.float32]
#: Scores, counts and other per-item values that are summed over many events.
DoubleArray = npt.NDArray[np.float64]
#: Positions (rows of a matrix, items of a stream).
IntArray = npt.NDArray[np.int64]


@runtime_checkable
class Ranker(Protocol):
    """An online recommender: learns one interaction at a time and ranks items for a user.

    Mirrors `river.reco.base.Ranker`: `y` is the feedback (a rating, or `None` for an
    implicit interaction). Scoring never adds unseen users or items to the state.
    """

    def learn_one(self, user: Hashable, item: Hashable, y: float | None = None) -> None: ...

    def predict_one(self, user: Hashable, item: Hashable) -> float: ...

    def rank(self, user: Hashable, items: Sequence[Hashable]) -> list[Hashable]: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into L2-normalized float32 vectors of shape `(len(texts), dim)`."""

    dim: int
    #: Identifies model weights and pooling; stored with every vector so that a
    #: change of encoder re-encodes instead of mixing vector spaces.
    version: str

    def encode(self, texts: Sequence[str]) -> FloatArray: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Named vectors per entity id, searchable by inner product or cosine."""

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: FloatArray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None: ...

    def search(self, name: str, query: FloatArray, k: int, exclude: Iterable[str] = ()) -> list[Hit]: ...

    def search_many(
        self,
        name: str,
        queries: FloatArray,
        k: int,
        exclude: Sequence[Iterable[str]] | None = None,
    ) -> list[list[Hit]]: ...

    def get(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]: ...

    def delete(self, ids: Sequence[str]) -> None: ...
