"""User profiles in a faust table: changelog-backed, partitioned like the events that change them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust

from streamrec.model.users.profile import UserProfile

__all__ = ["TableProfiles"]


class TableProfiles(MutableMapping[str, UserProfile]):
    """User profiles in a faust Table (changelog-backed, partitioned by user), with a cache.

    A profile's changelog message goes to the partition of the event that changed it, as
    faust's own table writes do, so that the partition's next owner restores it: the role
    sets `partition` before it applies each event. Profiles are kept deserialized for the most
    recently used users, and each changed profile is written once per batch, at `flush`: one
    changelog message per user per batch instead of one per event.
    """

    def __init__(
        self, table: faust.types.TableT[bytes, bytes], cache_size: int = 100_000, **params: Any
    ) -> None:
        self.table = table
        self.params = params
        self.cache_size = cache_size
        #: Partition of the event being applied: where changes to profiles are logged.
        self.partition = 0
        self._cache: OrderedDict[str, UserProfile] = OrderedDict()
        self._dirty: dict[str, int] = {}

    def __getitem__(self, user: str) -> UserProfile:
        profile = self._cache.get(user)
        if profile is None:
            raw = self.table.get(user.encode())
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
        if key in self.table:
            del self.table.data[key]
            self.table.send_changelog(self.partition, key, None, value_serializer="raw")
        elif cached is None:
            raise KeyError(user)

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and (user in self._cache or user.encode() in self.table)

    def __iter__(self) -> Iterator[str]:
        return (key.decode() for key in self.table.keys())

    def __len__(self) -> int:
        return len(self.table)

    def _remember(self, user: str, profile: UserProfile) -> None:
        self._cache[user] = profile
        self._cache.move_to_end(user)
        while len(self._cache) > self.cache_size:
            old, kept = self._cache.popitem(last=False)
            if old in self._dirty:  # never drop an unwritten change
                self._cache[old] = kept
                break

    def flush(self) -> None:
        """Write every changed profile to the table and to its changelog."""
        dirty, self._dirty = self._dirty, {}
        for user, partition in dirty.items():
            profile = self._cache.get(user)
            if profile is None:
                continue
            key, value = user.encode(), profile.to_bytes()
            self.table.data[key] = value
            self.table.send_changelog(partition, key, value)
