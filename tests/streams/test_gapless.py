"""`Gapless` against the embedded broker: what a stream skipped is read back, in its place."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from streamrec.streams.kafka.clients import KafkaClients, kafka_config
from streamrec.streams.kafka.gapless import Gapless
from streamrec.streams.kafka.topics import Topics, ensure_topics
from streamrec.streams.replay import Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics

pytestmark = pytest.mark.broker


def _delivered(topic: str, offsets: list[int]) -> list[Any]:
    """Events as a stream hands them on, at `offsets` of partition 0."""
    return [SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=o)) for o in offsets]


def test_skipped_records_are_read_back_in_order(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("gapless", tmp_path, partitions=1)
    ensure_topics(settings)
    topic = Topics.from_settings(settings).clicks
    producer = Replayer(kafka_config(settings))
    for n in range(8):
        producer.send(topic, {"n": n}, "u")
    producer.flush()
    metrics = Metrics.create(CollectorRegistry())
    app = faust.App(settings.topic("gapless"), broker=f"kafka://{settings.kafka_bootstrap}")
    clients = KafkaClients.create(settings)
    tp = f"{topic}:0"

    fetches: list[tuple[int, int]] = []

    def complete(applied: dict[str, int], offsets: list[int]) -> list[Any]:
        async def run() -> list[Any]:
            gapless = Gapless(app, clients, metrics, "recommender", lambda: applied)
            fetch = gapless._fetch

            async def counted(tp: Any, start: int, end: int) -> Any:
                fetches.append((start, end))
                return await fetch(tp, start, end)

            gapless._fetch = counted  # type: ignore[method-assign]
            try:
                return await gapless.complete(_delivered(topic, offsets))
            finally:
                await gapless.close()

        return asyncio.run(run())

    holes = complete({tp: 2}, [3, 4, 6])
    assert [e.message.offset for e in holes] == [2, 3, 4, 5, 6]
    read_back = {e.message.offset: orjson.loads(e.value)["n"] for e in holes if isinstance(e, faust.Event)}
    assert read_back == {2: 2, 5: 5}
    assert metrics.records_read_back.labels(topic, "recommender")._value.get() == 2
    assert fetches == [(2, 3)], "the second hole is served from what the first read fetched past it"
    # Records below the role's offsets are its own to recognize as read before.
    assert [e.message.offset for e in complete({tp: 2}, [1, 2])] == [1, 2]
    # Nothing of the partition held and nothing committed: it starts at its first record.
    assert [e.message.offset for e in complete({}, [1, 2])] == [0, 1, 2]

    consumer = Consumer({**kafka_config(settings), "group.id": app.conf.id, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
    consumer.close()
    # The group committed 6, far past the role's 2: another process read 2-5, and this one goes
    # on from 6 (what it skipped of its own is read back from there).
    assert [e.message.offset for e in complete({tp: 2}, [7])] == [6, 7]
    # One record past the role's offsets is what faust commits past a record its stream skipped.
    assert [e.message.offset for e in complete({tp: 5}, [7])] == [5, 6, 7]
    assert [e.message.offset for e in complete({}, [7])] == [6, 7]
