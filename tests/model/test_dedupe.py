from __future__ import annotations

import pickle
from collections import OrderedDict

import pytest

from streamrec.model.events.dedupe import Deduplicator, fingerprint


def test_forgets_the_oldest_beyond_capacity() -> None:
    seen = Deduplicator(capacity=3)
    keys = [fingerprint(i) for i in range(5)]
    assert [seen.check(k) for k in keys] == [False] * 5
    assert len(seen) == 3
    # The last three are remembered; the first two were pushed out.
    assert [seen.check(k) for k in keys[2:]] == [True, True, True]
    assert seen.check(keys[0]) is False


def test_a_restored_filter_remembers_the_same_keys_in_the_same_order() -> None:
    seen = Deduplicator(capacity=1000)
    keys = [fingerprint("c", f"u{i % 7}", f"i{i}", float(i)) for i in range(2500)]
    for key in keys:
        seen.check(key)
    blob = pickle.dumps(seen, protocol=pickle.HIGHEST_PROTOCOL)
    # One bytes string, not one object per key.
    assert len(blob) < 1000 * 12 + 200
    restored = pickle.loads(blob)
    assert len(restored) == 1000
    assert all(restored.check(k) for k in keys[-1000:])
    # Oldest first: one new key pushes out keys[1500], as it would have in the original.
    restored.check(b"new key, not a digest")
    seen.check(b"new key, not a digest")
    assert restored.check(keys[1500]) is seen.check(keys[1500]) is False
    # Keys of different lengths survive a round trip too.
    again = pickle.loads(pickle.dumps(restored))
    assert again.check(b"new key, not a digest") and again.check(keys[-1])


def test_loads_the_earlier_layout() -> None:
    old = Deduplicator.__new__(Deduplicator)
    old.__setstate__({"capacity": 2, "_seen": OrderedDict.fromkeys([b"a", b"b", b"c"])})
    assert len(old) == 2
    assert old.check(b"c") and old.check(b"b") and not old.check(b"a")


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Deduplicator(capacity=0)
