"""The catalog under the shop's control, against the session worker: an item deleted or marked
unavailable leaves every list that named it, and returns when it is on sale again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics, ensure_topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from tests.conftest import SESSION_EXCLUDED_TAG, wait_for
from tests.streams.test_pipeline import NOW, _catalog, _latest

pytestmark = pytest.mark.broker


def _names(msg: dict[str, Any] | None) -> list[str]:
    return [i["item_id"] for i in msg["items"]] if msg else []


def test_a_withdrawn_item_leaves_the_lists_that_named_it_and_comes_back(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    ns: str,
) -> None:
    titles = {
        "viol": "Baroque viola da gamba, seven strings",
        "bow": "Viola da gamba bow, pernambuco",
        "rosin": "Gamba rosin, dark",
        "case": "Viola da gamba hard case",
    }
    _catalog(vectors, producer, topics, ns, titles)
    # The session worker's rules exclude a tag: an item carrying it never appears, however near.
    banned = f"{ns}-banned"
    tagged = {
        "item_id": banned,
        "title": "Viola da gamba strings, gut",
        "tags": [SESSION_EXCLUDED_TAG],
        "ts": NOW,
    }
    producer.send(topics.items, tagged, key=banned)
    producer.flush()
    wait_for(lambda: any(m["id"] == banned for _, m in vectors.messages), 60, what="the tagged item's vector")
    bow, rosin = f"{ns}-bow", f"{ns}-rosin"
    user = f"{ns}-gambist"
    clicked = {"user_id": user, "item_id": f"{ns}-viol", "event": "click", "ts": NOW}
    producer.send(topics.clicks, clicked, key=user)
    producer.flush()
    first = wait_for(
        lambda: (lambda m: m if {bow, rosin} <= set(_names(m)) else None)(
            _latest(recommendations, user, topic=topics.clicks)
        ),
        90,
        what="a list naming the bow and the rosin",
    )
    assert banned not in _names(first)

    # Deleted: a tombstone on `items` renews the list, without the bow, with no event of the user's.
    deleted = time.time()
    producer.send(topics.items, None, key=bow)
    producer.flush()
    renewed = wait_for(
        lambda: _latest(recommendations, user, topic=topics.vectors), 30, what="the list the deletion renewed"
    )
    took = max(t for t, m in recommendations.messages if m is renewed) - deleted
    print(f"\ncatalog: a deleted item left its user's list {took:.2f}s after the tombstone")
    assert bow not in _names(renewed) and rosin in _names(renewed)
    assert worker.metric("streamrec_catalog_changes_total")

    # Marked unavailable: the same, by the item's own message.
    gone = {"item_id": rosin, "title": titles["rosin"], "ts": NOW + 1, "available": False}
    producer.send(topics.items, gone, key=rosin)
    producer.flush()
    wait_for(
        lambda: (lambda m: m if m is not renewed and rosin not in _names(m) else None)(
            _latest(recommendations, user, topic=topics.vectors)
        ),
        30,
        what="the list renewed without the unavailable item",
    )

    # Both on sale again: the user's next list may name them.
    for item_id in ("bow", "rosin"):
        back = {"item_id": f"{ns}-{item_id}", "title": titles[item_id], "ts": NOW + 2}
        producer.send(topics.items, back, key=f"{ns}-{item_id}")
    producer.flush()
    wait_for(
        lambda: sum(m["id"] in (bow, rosin) and m.get("v") is not None for _, m in vectors.messages) >= 4,
        60,
        what="the items' vectors, published again",
    )
    producer.send(topics.clicks, {**clicked, "item_id": f"{ns}-case", "ts": NOW + 3}, key=user)
    producer.flush()
    again = wait_for(
        lambda: (lambda m: m if m and m["trigger"]["offset"] > first["trigger"]["offset"] else None)(
            _latest(recommendations, user, topic=topics.clicks)
        ),
        60,
        what="the list after the next click",
    )
    assert {bow, rosin} <= set(_names(again)), _names(again)
    assert all(banned not in _names(m) for _, m in recommendations.messages)


def test_topics_make_an_existing_recommendations_topic_compacted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A deployment from before `recommendations` was compacted gets it so from `streamrec topics`
    (or a worker's start), keeping the topic and what is on it."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

    settings = make_settings("cfg", tmp_path)
    admin = AdminClient(kafka_config(settings))
    name = settings.topic("recommendations")
    old = NewTopic(name, num_partitions=settings.partitions, config={"cleanup.policy": "delete"})
    admin.create_topics([old])[name].result()

    created = ensure_topics(settings)
    assert name not in created and settings.topic("clicks") in created
    resource = ConfigResource("topic", name)
    policy = admin.describe_configs([resource])[resource].result()["cleanup.policy"].value
    assert policy == "compact"
