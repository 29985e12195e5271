"""User profiles of the partitions a recommender owns, in memory, with a compacted changelog."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, MutableMapping, Sequence
from typing import Any

from aiokafka import ConsumerRecord

from streamrec.model.users.profile import UserProfile

__all__ = ["ChangelogProfiles"]

#: Sends a profile's bytes (None: its deletion) to the changelog: (partition, user key, value).
Send = Callable[[int, bytes, bytes | None], None]


class ChangelogProfiles(MutableMapping[str, UserProfile]):
    """User profiles keyed by user, each written to the changelog partition of the events that
    change it, so that whoever owns the partition next reads them back (`load`).

    The role sets `partition` before it applies each event. Profiles are kept deserialized for
    the most recently used users, and each changed profile is written once per batch, at
    `flush`: one changelog message per user per batch instead of one per event.
    """

    def __init__(self, send: Send, cache_size: int = 100_000, **params: Any) -> None:
        self.send = send
        self.params = params
        self.cache_size = cache_size
        #: Partition of the event being applied: where changes to profiles are logged.
        self.partition = 0
        #: Each profile as written, and the partition it is logged in.
        self._rows: dict[bytes, bytes] = {}
        self._partition_of: dict[bytes, int] = {}
        self._cache: OrderedDict[str, UserProfile] = OrderedDict()
        self._dirty: dict[str, int] = {}

    # -- the owner's partitions ------------------------------------------------------

    def load(self, partition: int, records: Sequence[ConsumerRecord]) -> None:
        """Take a changelog partition's records, in offset order (a tombstone deletes)."""
        for record in records:
            key = record.key
            if key is None:
                continue
            self._cache.pop(key.decode("utf-8", "replace"), None)
            if record.value is None:
                self._rows.pop(key, None)
                self._partition_of.pop(key, None)
            else:
                self._rows[key] = record.value
                self._partition_of[key] = partition

    def drop(self, partitions: Collection[int] | None = None) -> None:
        """Let go of the profiles of these partitions (None: of all), each written before: another
        process owns them now, or they are read back anew."""
        gone = [key for key, p in self._partition_of.items() if partitions is None or p in partitions]
        for key in gone:
            del self._rows[key], self._partition_of[key]
            self._cache.pop(key.decode("utf-8", "replace"), None)

    # -- the mapping -------------------------------------------------------------------

    def __getitem__(self, user: str) -> UserProfile:
        profile = self._cache.get(user)
        if profile is None:
            raw = self._rows.get(user.encode())
            if raw is None:
                raise KeyError(user)
            profile = UserProfile.from_bytes(raw, **self.params)
            self._remember(user, profile)
        return profile

    def __setitem__(self, user: str, profile: UserProfile) -> None:
        self._remember(user, profile)
        self._dirty[user] = self.partition

    def __delitem__(self, user: str) -> None:
        cached = self._cache.pop(user, None)
        self._dirty.pop(user, None)
        key = user.encode()
        if key in self._rows:
            del self._rows[key]
            self.send(self._partition_of.pop(key, self.partition), key, None)
        elif cached is None:
            raise KeyError(user)

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and (user in self._cache or user.encode() in self._rows)

    def __iter__(self) -> Iterator[str]:
        return (key.decode() for key in list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def owns(self, user: str) -> bool:
        """Whether the user's profile is of a partition this process owns (written or loaded)."""
        return user.encode() in self._rows

    def _remember(self, user: str, profile: UserProfile) -> None:
        self._cache[user] = profile
        self._cache.move_to_end(user)
        while len(self._cache) > self.cache_size:
            old, kept = self._cache.popitem(last=False)
            if old in self._dirty:  # never drop an unwritten change
                self._cache[old] = kept
                break

    def flush(self) -> None:
        """Write every changed profile, and send it to the changelog."""
        dirty, self._dirty = self._dirty, {}
        for user, partition in dirty.items():
            profile = self._cache.get(user)
            if profile is None:
                continue
            key, value = user.encode(), profile.to_bytes()
            self._rows[key] = value
            self._partition_of[key] = partition
            self.send(partition, key, value)
