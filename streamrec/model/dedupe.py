"""Recognizing events seen before: producers that retry send some events twice."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["Deduplicator", "fingerprint"]


def fingerprint(*fields: Hashable) -> bytes:
    """A short, one-way digest of an event's identifying fields (no personal data kept).

    >>> fingerprint("ann", "guitar", "click", 1.0) == fingerprint("ann", "guitar", "click", 1.0)
    True
    >>> len(fingerprint("ann"))
    12
    """
    return hashlib.blake2b(repr(fields).encode(), digest_size=12).digest()


class Deduplicator:
    """Remembers the fingerprints of the last `capacity` events.

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
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, key: bytes) -> bool:
        """True if `key` was seen recently; records it either way."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False
