"""Item vectors of another modality (producer-supplied images), through the session worker."""

from __future__ import annotations

import pytest

from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.topics import Topics
from tests.conftest import SESSION_IMAGE_DIM, wait_for
from tests.streams.test_pipeline import NOW, _latest

pytestmark = pytest.mark.broker


def test_an_item_is_recommended_by_its_image_and_bad_vectors_are_dead_lettered(
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    deadletters: Collector,
    ns: str,
) -> None:
    assert SESSION_IMAGE_DIM == 4
    # One title for all: text cannot tell them apart, the pictures can.
    images = {
        "a": [1.0, 0.0, 0.0, 0.0],
        "b": [0.0, 1.0, 0.0, 0.0],
        "c": [0.0, 0.0, 1.0, 0.0],
        "twin": [0.97, 0.05, 0.0, 0.1],
    }
    for name, image in images.items():
        item = {"item_id": f"{ns}-{name}", "title": "Ceramic vase", "ts": NOW, "vectors": {"image": image}}
        producer.send(topics.items, item, key=item["item_id"])
    bad = {"item_id": f"{ns}-bad", "title": "Ceramic vase", "ts": NOW, "vectors": {"image": [1.0, 2.0]}}
    producer.send(topics.items, bad, key=bad["item_id"])
    producer.flush()
    wanted = {f"{ns}-{name}" for name in images}
    wait_for(
        lambda: wanted <= {m["id"] for _, m in vectors.messages if m["name"] == "image"},
        90,
        what="the image vectors on `vectors`",
    )
    dead = wait_for(
        lambda: next((m for _, m in deadletters.messages if bad["item_id"] in m["raw"]), None),
        30,
        what="the bad vector's dead letter",
    )
    assert dead["reason"] == "invalid_vector" and "must have 4 numbers, got 2" in dead["error"]

    user = f"{ns}-collector"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-a", "event": "click", "ts": NOW}, key=user
    )
    producer.flush()
    listed = wait_for(lambda: _latest(recommendations, user), 90, what="the user's list")
    first = listed["items"][0]
    assert first["item_id"] == f"{ns}-twin", listed["items"]
    assert "looks like 'Ceramic vase' you clicked" in first["reasons"]
