"""Recognizing events seen before: producers that retry send some events twice."""

from __future__ import annotations

import hashlib
from typing import Any

from streamrec.model.events.schemas import Click, Impression, Review

__all__ = ["Deduplicator", "click_id", "fingerprint", "impression_id", "review_id", "review_identity"]

#: Bytes in a fingerprint.
DIGEST_SIZE = 12


def fingerprint(*fields: Any) -> bytes:
    """A short, one-way digest of an event's identifying fields (no personal data kept).

    >>> fingerprint("ann", "guitar", "click", 1.0) == fingerprint("ann", "guitar", "click", 1.0)
    True
    >>> len(fingerprint("ann"))
    12
    """
    return hashlib.blake2b(repr(fields).encode(), digest_size=DIGEST_SIZE).digest()


def click_id(click: Click) -> bytes:
    """A click's identity: the same user, item, kind and time is the same click.

    >>> a = Click(user_id="ann", item_id="x", event="click", ts=1.0)
    >>> click_id(a) == click_id(a.model_copy()) != click_id(a.model_copy(update={"ts": 2.0}))
    True
    """
    return fingerprint("c", click.user_id, click.item_id, click.event, click.ts)


def impression_id(impression: Impression) -> bytes:
    """An impression's identity: the same user, time, list and items is the same impression."""
    return fingerprint("i", impression.user_id, impression.ts, impression.list_id, *impression.items)


def review_identity(review: Review) -> str:
    """Names a review among its author's: its `review_id`, else a digest of item, time and text.

    >>> r = Review(user_id="ann", item_id="x", text="Warm tone.", ts=1.0)
    >>> review_identity(r) == review_identity(r.model_copy())
    True
    >>> review_identity(r.model_copy(update={"review_id": "r9"}))
    'r9'
    """
    return review.review_id or fingerprint(review.item_id, review.ts, review.text).hex()


def review_id(user_id: str, identity: str) -> bytes:
    """A review's identity as the deduplicators record it (see `review_identity`)."""
    return fingerprint("r", user_id, identity)


class Deduplicator:
    """Remembers the fingerprints of the last `capacity` events.

    A ring of the fingerprints in arrival order, and a set of them for lookups. Workers
    checkpoint it often, so it pickles as one bytes string (the ring, oldest first) rather
    than as `capacity` separate objects: at the default capacity that is a copy of 2.4 MB,
    not a walk over 200,000 entries on the worker's event loop.

    Parameters
    ----------
    capacity
        How many recent fingerprints are kept; an event repeated after more than this
        many others counts as new.

    Examples
    --------
    >>> seen = Deduplicator(capacity=2)
    >>> seen.check(b"a"), seen.check(b"a"), seen.check(b"b"), seen.check(b"c"), seen.check(b"a")
    (False, True, False, False, False)
    >>> import pickle
    >>> restored = pickle.loads(pickle.dumps(seen))
    >>> len(restored), restored.check(b"c"), restored.check(b"b")
    (2, True, False)
    """

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._ring: list[bytes | None] = [None] * capacity
        self._next = 0
        self._seen: set[bytes] = set()
        #: Whether any key was not a `fingerprint` (then the keys pickle as a list).
        self._mixed = False

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: object) -> bool:
        """Whether `key` is remembered (without recording it)."""
        return key in self._seen

    def check(self, key: bytes) -> bool:
        """True if `key` was seen recently; records it if not."""
        seen = self._seen
        if key in seen:
            return True
        ring, slot = self._ring, self._next
        oldest = ring[slot]
        if oldest is not None:
            seen.discard(oldest)
        ring[slot] = key
        seen.add(key)
        if len(key) != DIGEST_SIZE:
            self._mixed = True
        self._next = slot + 1 if slot + 1 < self.capacity else 0
        return False

    def _in_order(self) -> list[bytes]:
        """The remembered keys, oldest first."""
        ring, slot = self._ring, self._next
        # Until the ring is full, the slots from `slot` on are empty.
        return ring[:slot] if ring[slot] is None else ring[slot:] + ring[:slot]  # type: ignore[return-value]

    def __getstate__(self) -> dict[str, Any]:
        keys = self._in_order()
        if self._mixed:
            return {"capacity": self.capacity, "width": 0, "keys": keys}
        return {"capacity": self.capacity, "width": DIGEST_SIZE, "keys": b"".join(keys)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["capacity"])  # type: ignore[misc]
        if "_seen" in state:  # the earlier layout: an ordered dict of the keys
            keys = list(state["_seen"])
        else:
            width, packed = state["width"], state["keys"]
            keys = [packed[i : i + width] for i in range(0, len(packed), width)] if width else packed
        for key in keys[-self.capacity :]:
            self.check(key)
