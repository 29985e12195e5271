"""Item vectors of another modality (producer-supplied images), through the session worker."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
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
    # One title for all: text cannot tell them apart, the pictures can.
    pad = [0.0] * (SESSION_IMAGE_DIM - 4)
    images = {
        "a": [1.0, 0.0, 0.0, 0.0, *pad],
        "b": [0.0, 1.0, 0.0, 0.0, *pad],
        "c": [0.0, 0.0, 1.0, 0.0, *pad],
        "twin": [0.97, 0.05, 0.0, 0.1, *pad],
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
    assert dead["reason"] == "invalid_vector"
    assert f"must have {SESSION_IMAGE_DIM} numbers, got 2" in dead["error"]

    user = f"{ns}-collector"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-a", "event": "click", "ts": NOW}, key=user
    )
    producer.flush()
    listed = wait_for(lambda: _latest(recommendations, user), 90, what="the user's list")
    first = listed["items"][0]
    assert first["item_id"] == f"{ns}-twin", listed["items"]
    assert "looks like 'Ceramic vase' you clicked" in first["reasons"]


def test_the_encoder_embeds_pictures_with_the_image_model_and_dead_letters_unreadable_ones(
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    deadletters: Collector,
    ns: str,
    tmp_path: Path,
) -> None:
    from PIL import Image

    colors = {"red": (230, 20, 20), "crimson": (220, 30, 40), "blue": (20, 20, 230), "green": (20, 200, 20)}
    for name, color in colors.items():
        Image.new("RGB", (48, 48), color).save(tmp_path / f"{name}.png")
    for name in ("red", "blue", "green"):
        item = {
            "item_id": f"{ns}-{name}",
            "title": "Cushion",
            "ts": NOW,
            "image": str(tmp_path / f"{name}.png"),
        }
        producer.send(topics.items, item, key=item["item_id"])
    # One picture as base64 bytes rather than a path.
    inline = base64.b64encode((tmp_path / "crimson.png").read_bytes()).decode()
    crimson = {"item_id": f"{ns}-crimson", "title": "Cushion", "ts": NOW, "image": inline}
    producer.send(topics.items, crimson, key=crimson["item_id"])
    broken = {
        "item_id": f"{ns}-broken",
        "title": "Cushion",
        "ts": NOW,
        "image": str(tmp_path / "missing.png"),
    }
    producer.send(topics.items, broken, key=broken["item_id"])
    producer.flush()
    wanted = {f"{ns}-{name}" for name in colors}
    wait_for(
        lambda: wanted <= {m["id"] for _, m in vectors.messages if m["name"] == "image"},
        90,
        what="the embedded pictures on `vectors`",
    )
    dead = wait_for(
        lambda: next((m for _, m in deadletters.messages if broken["item_id"] in m["raw"]), None),
        30,
        what="the unreadable picture's dead letter",
    )
    assert dead["reason"] == "invalid_image" and "readable file path" in dead["error"]

    user = f"{ns}-decorator"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-red", "event": "click", "ts": NOW}, key=user
    )
    producer.flush()
    listed = wait_for(lambda: _latest(recommendations, user), 90, what="the user's list")
    assert listed["items"][0]["item_id"] == f"{ns}-crimson", listed["items"]
    assert "looks like 'Cushion' you clicked" in listed["items"][0]["reasons"]
