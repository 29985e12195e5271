"""Changing the encoder while the pipeline serves: the catalog and the reviews are read again under
the new version (of another dimension), lists keep flowing from the old one meanwhile, the
recommender and the API switch once the new version covers everything, and the old vectors are
gone from Qdrant."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient

from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from streamrec.streams.vectors.sink import collection_name
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

NOW = time.time()
#: The new encoder's vectors: far from MiniLM's 384.
TINY_DIM = 32

TITLES = {
    "strat": "Electric guitar, alder body, three single-coil pickups",
    "tele": "Electric guitar, ash body, two single-coil pickups",
    "nylon": "Classical guitar, nylon strings, cedar top",
    "cajon": "Cajon box drum with snare wires",
    "snare": "Snare drum, maple shell, 14 inch",
    "sticks": "Drumsticks, hickory, 5A",
    "capo": "Guitar capo, quick release",
    "picks": "Guitar picks, medium, pack of 12",
}
REVIEWS = [
    ("strat", 5, "Bright, snappy tone and the neck plays fast. Love it."),
    ("cajon", 2, "The snare wires buzz constantly and the seat cracked."),
    ("capo", 4, "Holds tuning well, easy to move between frets."),
    ("sticks", 5, "Balanced and durable, they last for months."),
]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT of one small layer, randomly initialized, with MiniLM's tokenizer: an encoder of
    another dimension, as a fine-tuned or replaced model would be."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from streamrec.model.text.weights import locate_model

    path = tmp_path_factory.mktemp("tiny-encoder")
    minilm, _ = locate_model(None)
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=TINY_DIM, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _encoders(lists: list[dict[str, Any]]) -> list[str]:
    return [m["model"]["encoder"] for m in sorted(lists, key=lambda m: m["generated_at"])]


def test_the_encoder_changes_mid_stream_and_the_lists_follow(
    make_settings: Callable[..., Settings], tmp_path: Path, tiny_encoder: Path
) -> None:
    settings = make_settings("switch", tmp_path / "shared")
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    config = kafka_config(settings)
    recs = Collector(config, topics.recommendations)
    vectors = Collector(config, topics.vectors)
    producer = Replayer(config)
    serving_dir = tmp_path / "serving"
    try:
        serving = stack.start_worker(["api", "cf", "recommender"], DATA_DIR=str(serving_dir))
        encoder = stack.start_worker(["encoder"], DATA_DIR=str(tmp_path / "encoder"))
        stack.wait_ready(timeout=240)
        for name, title in TITLES.items():
            producer.send(topics.items, {"item_id": name, "title": title, "ts": NOW}, key=name)
        for n, (item, rating, text) in enumerate(REVIEWS):
            review = {"user_id": "critic", "item_id": item, "rating": rating, "text": text, "ts": NOW + n}
            producer.send(topics.reviews, review, key="critic")
        # A review whose author then asked to be forgotten: never read again under the new encoder.
        gone = {"user_id": "gone", "item_id": "nylon", "rating": 5, "text": "Warm and soft.", "ts": NOW}
        producer.send(topics.reviews, gone, key="gone")
        producer.flush()
        producer.send(topics.forget, {"user_id": "gone"}, key="gone")
        producer.flush()
        wait_for(
            lambda: set(TITLES) <= {m["id"] for _, m in vectors.messages if m.get("name") == "text"},
            120,
            what="the catalog's vectors",
        )
        step = iter(range(1_000_000))

        def click(user: str, item: str) -> None:
            producer.send(
                topics.clicks,
                {"user_id": user, "item_id": item, "event": "click", "ts": NOW + next(step)},
                key=user,
            )
            producer.flush()

        click("ann", "strat")
        first = wait_for(
            lambda: next((m for _, m in recs.messages if m["user_id"] == "ann"), None), 90, what="ann's list"
        )
        old = first["model"]["encoder"]
        assert old != "none"

        # The encoder comes back with another model: it reads the topics again while lists flow.
        assert encoder.stop() == 0
        stack.workers.remove(encoder)
        encoder = stack.start_worker(
            ["encoder"], DATA_DIR=str(tmp_path / "encoder"), ENCODER__MODEL=str(tiny_encoder)
        )
        deadline = time.monotonic() + 240
        new = None
        while new is None and time.monotonic() < deadline:
            click("bob", "strat" if next(step) % 2 else "snare")
            time.sleep(1.0)
            bobs = [m for _, m in recs.messages if m["user_id"] == "bob"]
            new = next((e for e in _encoders(bobs) if e != old), None)
        assert new is not None, "no list from the new encoder within 240 s"

        # Lists flowed throughout, each of one version, and never back to the old one.
        seen = _encoders([m for _, m in recs.messages if m["user_id"] == "bob"])
        assert seen[0] == old and set(seen) == {old, new}
        assert seen[seen.index(new) :] == [new] * (len(seen) - seen.index(new))
        marker = next(m for _, m in vectors.messages if m.get("kind") == "encoder")
        assert marker["version"] == new and marker["dim"] == TINY_DIM
        assert marker["items"] >= len(TITLES) and marker["reviews"] == len(REVIEWS)  # none of `gone`'s
        assert serving.metric("streamrec_text_version") == {
            f'{{role="{role}",version="{new}"}}': 1.0 for role in ("api", "recommender")
        }
        assert encoder.metric("streamrec_reencode_progress") == {'{role="encoder"}': 1.0}

        # The new space answers: by text alone, similar items of another dimension.
        similar = httpx.get(f"{serving.api_url}/v1/items/tele/similar", params={"k": 3}, timeout=10).json()
        assert len(similar["items"]) == 3
        click("ann", "cajon")
        latest = wait_for(
            lambda: next(
                (
                    m
                    for _, m in reversed(recs.messages)
                    if m["user_id"] == "ann" and m["model"]["encoder"] == new
                ),
                None,
            ),
            60,
            what="ann's list from the new encoder",
        )
        assert latest["items"]
        assert serving.stop() == 0
        stack.workers.remove(serving)
    finally:
        recs.close()
        vectors.close()
        stack.stop()

    # Qdrant holds the new version's collections alone, with vectors of its dimension.
    client = QdrantClient(path=str(serving_dir / "qdrant"))
    try:
        names = {c.name for c in client.get_collections().collections}
        assert names == {collection_name(settings, kind, new) for kind in ("items", "users")}
        items = collection_name(settings, "items", new)
        assert client.get_collection(items).config.params.vectors["text"].size == TINY_DIM
        assert client.count(items, exact=True).count == len(TITLES)
    finally:
        client.close()
