"""Right to be forgotten, and repeated events, against the session worker."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qdrant_client import QdrantClient

from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from streamrec.streams.telemetry import Metrics
from streamrec.streams.vectors.sink import QdrantSink
from tests.conftest import wait_for
from tests.streams.test_pipeline import NOW, _catalog, _latest

pytestmark = pytest.mark.broker


def test_forget_erases_the_user_everywhere_within_seconds(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    session_settings: Settings,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, {"a": "Guitar strap, leather", "b": "Guitar tuner"})
    user = f"{ns}-gone"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-a", "event": "click", "ts": NOW}, key=user
    )
    producer.send(
        topics.reviews,
        {"user_id": user, "item_id": f"{ns}-a", "text": "Soft leather strap.", "rating": 4, "ts": NOW},
        key=user,
    )
    producer.flush()
    wait_for(
        lambda: _latest(recommendations, user, topic=topics.reviews), 90, what="the review's recommendation"
    )
    config = kafka_config(session_settings)
    audit = Collector(config, topics.audit)
    encoded = Collector(config, topics.reviews_encoded)
    tombstones = TombstoneCollector(
        config, [topics.recommendations, topics.vectors, topics.reviews_encoded, topics.profiles]
    )
    readable = Collector(config, topics.profiles)
    wait_for(lambda: any(m["user_id"] == user for _, m in encoded.messages), 30, what="the encoded review")
    # The review made a readable profile of the user, with their own words.
    wait_for(lambda: any(m["user_id"] == user for _, m in readable.messages), 30, what="the readable profile")
    readable.close()
    # The CF vector of the user must exist before it can be tombstoned.
    wait_for(
        lambda: any(m["kind"] == "user" and m["id"] == user for _, m in vectors.messages),
        30,
        what="the user's cf vector",
    )

    asked = time.time()
    producer.send(topics.forget, {"user_id": user}, key=user)
    producer.flush()
    try:
        roles = wait_for(
            lambda: (lambda r: r if r >= {"cf", "recommender"} else None)(
                {m["role"] for _, m in audit.messages if m["user_id"] == user}
            ),
            30,
            what="audit records",
        )
        took = max(arrived for arrived, m in audit.messages if m["user_id"] == user) - asked
        print(f"\nforget: audit records from {sorted(roles)} {took:.2f}s after the request")
        assert took < 5.0, f"erasure took {took:.1f}s"
        assert roles == {"cf", "recommender"}
        records = {m["role"]: m for _, m in audit.messages if m["user_id"] == user}
        assert "cf factors" in records["cf"]["erased"]
        assert any("profile" in e for e in records["recommender"]["erased"])
        wait_for(lambda: (topics.recommendations, user.encode()) in tombstones.keys, 10, what="rec tombstone")
        assert (topics.vectors, f"user:cf:{user}".encode()) in tombstones.keys
        wait_for(lambda: (topics.profiles, user.encode()) in tombstones.keys, 10, what="profile tombstone")
        assert "readable profile (tombstone)" in records["recommender"]["erased"]
        review_keys = {k for t, k in tombstones.keys if t == topics.reviews_encoded}
        assert any(k.startswith(user.encode() + b"\x1f") for k in review_keys)
        changelog = [
            t
            for t in TombstoneCollector.topics_of(config)
            if t.endswith("profiles-changelog") and t.startswith(session_settings.topic_prefix)
        ]
        assert changelog, "the profile table's changelog topic"
        profiles = TombstoneCollector(config, changelog)
        try:
            wait_for(lambda: (changelog[0], user.encode()) in profiles.keys, 10, what="profile tombstone")
        finally:
            profiles.close()
        assert worker.metric("streamrec_forgotten_users_total")
    finally:
        audit.close()
        encoded.close()
        tombstones.close()


def test_a_repeated_event_is_learned_once(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, {"x": "Drum key"})
    user = f"{ns}-twice"
    click = {"user_id": user, "item_id": f"{ns}-x", "event": "click", "ts": NOW}
    before = sum(v for k, v in worker.metric("streamrec_duplicates_total").items() if "clicks" in k)
    producer.send(topics.clicks, click, key=user)
    producer.send(topics.clicks, click, key=user)
    producer.flush()
    wait_for(
        lambda: (
            sum(v for k, v in worker.metric("streamrec_duplicates_total").items() if "clicks" in k)
            >= before + 2
        ),
        30,
        what="both roles to ignore the repeat",
    )


def test_qdrant_sink_writes_whole_points_and_deletes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    client = QdrantClient(":memory:")
    sink = QdrantSink(
        Settings(data_dir=tmp_path),
        Metrics.create(),
        {"text": (3, "cosine"), "cf": (2, "dot")},
        client=client,
    )
    points = {
        "ann": {"text": np.array([1, 0, 0], np.float32), "cf": None},
        "bob": {"text": np.array([0, 1, 0], np.float32), "cf": np.array([1, 1], np.float32)},
    }

    async def run() -> None:
        await sink.start()
        assert await sink.use_text("v1", 3)
        sink.mark("users", ["ann", "bob"])
        await sink.flush(lambda kind, ids: [(i, points[i], {"v": 1}) for i in ids])
        assert sink.collections["users"].count() == 2
        assert set(sink.collections["users"].get("cf", ["ann", "bob"])) == {"bob"}
        sink.delete("users", "ann")
        await sink.flush(lambda kind, ids: [])
        assert sink.collections["users"].count() == 1
        await sink.close()

    asyncio.run(run())


class TombstoneCollector:
    """Keys of null-valued messages in some topics (a confluent consumer in a thread)."""

    def __init__(self, config: dict, names: list[str]) -> None:
        import threading

        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.keys: set[tuple[str, bytes]] = set()
        self._consumer = Consumer({**config, "group.id": "tombstones", "enable.auto.commit": False})
        metadata = self._consumer.list_topics(timeout=10)
        self._consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in names for p in metadata.topics[t].partitions]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def topics_of(config: dict) -> list[str]:
        from confluent_kafka.admin import AdminClient

        return list(AdminClient(config).list_topics(timeout=10).topics)

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.1):
                if not msg.error() and msg.value() is None:
                    self.keys.add((msg.topic(), msg.key()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
