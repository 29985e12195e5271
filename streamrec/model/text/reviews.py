"""Encoded reviews and what the recommender keeps of each: its vector, to take it back later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.events.schemas import Trigger
from streamrec.model.text.opinions import Opinion

__all__ = ["EncodedReview", "ReviewLedger"]


@dataclass(frozen=True)
class EncodedReview:
    """A review with its text vector, as the encoder hands it on (topic `reviews-encoded`)."""

    user_id: str
    item_id: str
    rating: float | None
    ts: float
    review_id: str | None
    vector: FloatArray
    version: str
    #: The review's own message on `reviews`: what its recommendation answers.
    trigger: Trigger
    #: Its key on `reviews-encoded` (author and identity), and its identity among the author's.
    key: bytes = b""
    identity: str = ""
    #: How the review reads, in [-1, 1], as the encoder role's sentiment head read it (None: unread).
    polarity: float | None = None
    #: What its clauses say of each aspect, each with its own polarity and words.
    opinions: tuple[Opinion, ...] = ()
    #: A review read again by a new encoder (its author's profile already holds it).
    reencoded: bool = False


@dataclass
class _Kept:
    partition: int
    item_id: str
    rating: float | None
    #: None while the review's vector is of an encoder not yet serving.
    vector: np.ndarray | None


class ReviewLedger:
    """Each review folded into an item's text vector, by key, so that it can be taken back out.

    Vectors are kept in float16: half the memory, ample for a mean of unit vectors. A
    `forget` request finds every review of its user, each with the partition it lives in.

    Examples
    --------
    >>> ledger = ReviewLedger()
    >>> ledger.add(b"ann/1", "ann", 0, "guitar", 5.0, np.ones(2, dtype=np.float32))
    True
    >>> ledger.add(b"ann/1", "ann", 0, "guitar", 5.0, np.ones(2, dtype=np.float32))  # a replay
    False
    >>> [(key, partition) for key, partition in ledger.keys_of("ann")]
    [(b'ann/1', 0)]
    >>> item, rating, vector = ledger.remove(b"ann/1"); item, rating, vector.dtype
    ('guitar', 5.0, dtype('float32'))
    """

    def __init__(self) -> None:
        self._kept: dict[bytes, _Kept] = {}
        self._of_user: dict[str, set[bytes]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept

    def add(
        self,
        key: bytes,
        user: str,
        partition: int,
        item: str,
        rating: float | None,
        vector: FloatArray | None,
    ) -> bool:
        """Keep a review; False if this key is already kept (then nothing changes)."""
        if key in self._kept:
            return False
        self._kept[key] = _Kept(partition, item, rating, _half(vector))
        self._of_user.setdefault(user, set()).add(key)
        return True

    def remove(self, key: bytes) -> tuple[str, float | None, FloatArray | None] | None:
        """Take a review out: its item, rating and vector (None: not in its item's vector); None if
        it is not kept."""
        kept = self._kept.pop(key, None)
        if kept is None:
            return None
        return kept.item_id, kept.rating, None if kept.vector is None else kept.vector.astype(np.float32)

    def fill(self, key: bytes, vector: FloatArray) -> bool:
        """Give a kept review that has no vector this one; False if it is not kept or has one."""
        kept = self._kept.get(key)
        if kept is None or kept.vector is not None:
            return False
        kept.vector = _half(vector)
        return True

    def revector(self, vectors: Mapping[bytes, FloatArray]) -> None:
        """Every review's vector as a new encoder wrote it (None where it wrote none): what its
        item's vector now holds of it."""
        for key, kept in self._kept.items():
            kept.vector = _half(vectors.get(key))

    def keys_of(self, user: str) -> list[tuple[bytes, int | None]]:
        """Every review key of `user`, in key order, with its partition where it is still kept."""
        keys = sorted(self._of_user.get(user, ()))
        return [(key, self._kept[key].partition if key in self._kept else None) for key in keys]

    def forget(self, user: str) -> list[tuple[bytes, int | None]]:
        """Drop `user` from the index of authors; their reviews' keys and partitions.

        The reviews themselves stay until `remove` takes each out (when its tombstone comes back).
        """
        keys = self.keys_of(user)
        self._of_user.pop(user, None)
        return keys


def _half(vector: FloatArray | None) -> np.ndarray | None:
    return None if vector is None else np.asarray(vector, dtype=np.float16)
