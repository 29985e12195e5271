"""Qdrant unavailable: the pipeline keeps serving, Qdrant writes wait and retry, nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from streamrec.streams.vectors.qdrant import point_id
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_locked_qdrant_storage_delays_the_view_and_loses_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("qd", tmp_path)
    topics = Topics.from_settings(settings)
    (tmp_path / "qdrant").mkdir()
    holder = QdrantClient(path=str(tmp_path / "qdrant"))  # another process's lock, as far as the worker knows
    stack = Stack(settings, log_dir=tmp_path / "logs")
    config = kafka_config(settings)
    stack.start_broker()
    recs = Collector(config, topics.recommendations)
    try:
        worker = stack.start_worker()
        stack.wait_ready(timeout=240)
        producer = Replayer(config)
        items = {"a": "Mandolin strings", "b": "Mandolin case", "c": "Ukulele tuner"}
        for item, title in items.items():
            producer.send(topics.items, {"item_id": item, "title": title, "ts": time.time()}, item)
        producer.flush()
        time.sleep(3)
        producer.send(
            topics.reviews,
            {
                "user_id": "ann",
                "item_id": "a",
                "text": "Bright mandolin strings.",
                "rating": 5,
                "ts": time.time(),
            },
            "ann",
        )
        producer.flush()
        # Recommendations flow although Qdrant cannot be opened...
        wait_for(
            lambda: any(m["user_id"] == "ann" for _, m in recs.messages), 90, what="ann's recommendation"
        )
        wait_for(
            lambda: worker.metric("streamrec_retries_total").get('{operation="qdrant_open"}', 0) > 0,
            30,
            what="retries to open Qdrant",
        )
        assert not worker.metric("streamrec_qdrant_points_upserted_total")
        # ...and once it can, everything that happened meanwhile is written.
        holder.close()
        wait_for(
            lambda: (
                worker.metric("streamrec_qdrant_points_upserted_total").get('{collection="items"}', 0) >= 3
                and worker.metric("streamrec_qdrant_points_upserted_total").get('{collection="users"}', 0)
                >= 1
            ),
            90,
            what="the pending points to reach Qdrant",
        )
        assert worker.stop() == 0
        stack.workers.clear()
    finally:
        recs.close()
        stack.stop()
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        # One collection of each kind: that of the encoder version that wrote the vectors.
        names = [c.name for c in client.get_collections().collections]
        items_at = next(n for n in names if n.startswith(settings.topic("items")))
        users_at = next(n for n in names if n.startswith(settings.topic("users")))
        found = client.retrieve(items_at, [point_id(items_at, i) for i in items], with_vectors=True)
        assert len(found) == 3 and all("text" in p.vector for p in found)
        ann = client.retrieve(users_at, [point_id(users_at, "ann")], with_vectors=True)
        assert ann and "text" in ann[0].vector
    finally:
        client.close()
