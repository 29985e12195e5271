"""Snapshots on the compacted topic: a reader gets the last whole one its secret confirms, never a
publication cut short, and each publisher tombstones its own previous snapshot, after a restart too."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.output import Output
from streamrec.streams.kafka.restore import read_to_end
from streamrec.streams.kafka.snapshots import CHUNK_BYTES, SnapshotPublisher, read_snapshot
from streamrec.streams.kafka.topics import Topics, ensure_topics
from streamrec.streams.settings import Settings

pytestmark = pytest.mark.broker

SECRET = b"the api token"


def _tombstoned(clients: KafkaClients, topic: str) -> set[bytes]:
    """Keys whose last record on the topic is a tombstone."""
    last: dict[bytes, bytes | None] = {}

    def apply(_: int, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            last[record.key] = record.value

    asyncio.run(read_to_end(clients, [topic], [0], apply))
    return {key for key, value in last.items() if value is None}


def test_the_latest_whole_snapshot_is_read(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings("snap", tmp_path)
    ensure_topics(settings)
    topic = Topics.from_settings(settings).api_snapshots
    clients = KafkaClients.create(settings)
    output = Output(clients.librdkafka)
    assert read_snapshot(clients, topic, SECRET) is None

    blobs = {name: os.urandom(CHUNK_BYTES * 2 + 1_000) for name in "abcd"}
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    first = SnapshotPublisher(output, topic, SECRET, tmp_path / "first.json")
    second = SnapshotPublisher(output, topic, SECRET, tmp_path / "second.json")

    a = first.publish(tmp_path / "a")
    assert a.chunks == 3
    assert read_snapshot(clients, topic, SECRET) == (blobs["a"], a)
    b = second.publish(tmp_path / "b")
    assert read_snapshot(clients, topic, SECRET) == (blobs["b"], b)
    assert not _tombstoned(clients, topic)  # the second publisher leaves the first's alone

    c = first.publish(tmp_path / "c")
    assert _tombstoned(clients, topic) == {a.chunk_key(n) for n in range(a.chunks)}
    # A publication cut short, its chunks sent and no manifest: never read.
    output.send(topic, b"torn", b"torn/0", partition=0)
    output.flush_sync()
    assert read_snapshot(clients, topic, SECRET) == (blobs["c"], c)
    # Written with another secret (or altered): not read.
    assert read_snapshot(clients, topic, b"another token") is None

    # The first publisher restarted goes on as itself: it tombstones its last snapshot.
    restarted = SnapshotPublisher(output, topic, SECRET, tmp_path / "first.json")
    assert restarted.publisher == first.publisher != second.publisher
    d = restarted.publish(tmp_path / "d")
    assert _tombstoned(clients, topic) == {s.chunk_key(n) for s in (a, c) for n in range(3)}
    assert read_snapshot(clients, topic, SECRET) == (blobs["d"], d)
    # A process configured with another secret publishes last: the one before it is read.
    SnapshotPublisher(output, topic, b"another token", tmp_path / "stranger.json").publish(tmp_path / "a")
    assert read_snapshot(clients, topic, SECRET) == (blobs["d"], d)
    output.close()
