"""`ChangelogProfiles`: each change logged once per batch, in the partition of the event that made
it; what a changelog partition holds read back, tombstones included; a partition let go of."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from streamrec.model.users.profile import UserProfile
from streamrec.streams.roles.recommender.profiles import ChangelogProfiles


def _profile(user: str, item: str) -> UserProfile:
    profile = UserProfile(user)
    profile.observe(item, ts=1.0, action="click", vector=np.ones(4, dtype=np.float32))
    return profile


def test_changes_are_logged_once_per_flush_in_their_events_partition() -> None:
    sent: list[tuple[int, bytes, bytes | None]] = []
    profiles = ChangelogProfiles(lambda p, k, v: sent.append((p, k, v)))
    profiles.partition = 1
    profiles["ann"] = _profile("ann", "a")
    profiles["ann"] = _profile("ann", "b")
    profiles.partition = 0
    profiles["bob"] = _profile("bob", "c")
    assert sent == []
    profiles.flush()
    assert [(p, k) for p, k, _ in sent] == [(1, b"ann"), (0, b"bob")]
    assert profiles.owns("ann") and len(profiles) == 2
    del profiles["ann"]
    assert sent[-1] == (1, b"ann", None)  # the tombstone goes where the profile was logged
    assert "ann" not in profiles


def test_a_partition_read_back_and_let_go() -> None:
    written: list[tuple[int, bytes, bytes | None]] = []
    first = ChangelogProfiles(lambda p, k, v: written.append((p, k, v)))
    for partition, user in ((0, "ann"), (1, "bob"), (1, "cy")):
        first.partition = partition
        first[user] = _profile(user, f"{user}-item")
    first.flush()
    del first["cy"]

    second = ChangelogProfiles(lambda p, k, v: None)
    for partition in (0, 1):
        records = [SimpleNamespace(key=k, value=v) for p, k, v in written if p == partition]
        second.load(partition, records)  # type: ignore[arg-type]
    assert sorted(second) == ["ann", "bob"]
    assert second["bob"].seen == first["bob"].seen
    second.drop([1])
    assert sorted(second) == ["ann"] and "bob" not in second
    second.drop()
    assert len(second) == 0 and "ann" not in second
