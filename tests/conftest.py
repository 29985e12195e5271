"""Shared fixtures: one broker and one worker per test session, real parts only.

The broker is the embedded tansu unless STREAMREC_KAFKA_BOOTSTRAP points at a Kafka.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamrec.model.text.opinion_parts import PARTS
from streamrec.streams.kafka.broker import EmbeddedBroker
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics, ensure_topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack, WorkerProcess
from streamrec.streams.worker import ROLES


def wait_for(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def committed_up_to(config: dict[str, Any], group: str, topic: str, ends: dict[int, int]) -> bool:
    """Whether `group` has committed at least `ends` (partition: offset) on `topic`."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= ends[tp.partition] for tp in offsets)


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    external = os.environ.get("STREAMREC_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def broker_settings(bootstrap: str) -> dict[str, Any]:
    """Settings naming the session's broker: the embedded one keeps its short fetch wait."""
    embedded = not os.environ.get("STREAMREC_KAFKA_BOOTSTRAP")
    return {"kafka_bootstrap": bootstrap, "kafka_fetch_max_wait_ms": 20 if embedded else None}


@pytest.fixture(scope="session")
def make_settings(broker_settings: dict[str, Any]) -> Callable[..., Settings]:
    """Settings for a stack on the session's broker: topics under a prefix of their own, state in
    `data_dir`, a short session timeout (workers killed on purpose leave their group sooner), any
    free metrics port."""

    def make(name: str, data_dir: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **broker_settings,
            "topic_prefix": f"{name}{uuid.uuid4().hex[:6]}-",
            "data_dir": data_dir,
            "kafka_session_timeout_s": 6.0,
            "metrics_port": 0,
            "api_port": 0,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture(scope="session")
def session_settings(
    make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings of the shared worker: a prefix of its own, state in a temporary directory."""
    return make_settings("t", tmp_path_factory.mktemp("worker"))


@pytest.fixture(scope="session")
def topics(session_settings: Settings) -> Topics:
    ensure_topics(session_settings)
    return Topics.from_settings(session_settings)


#: Items with this tag never appear on the session worker's lists (its rules say so).
SESSION_EXCLUDED_TAG = "excluded-by-rules"
#: The session worker takes image vectors of this dimension, from producers or its image model.
SESSION_IMAGE_DIM = 16


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-text model of the CLIP family, tiny and randomly initialized (no CLIP weights can be
    had offline here): enough for pictures that look alike to get vectors that are alike."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tmp_path_factory.mktemp("tiny-clip")
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "vocab_size": 100, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
            "pad_token_id": 1}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=SESSION_IMAGE_DIM)
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        path
    )
    return path


@pytest.fixture(scope="session")
def worker(session_settings: Settings, topics: Topics, tiny_clip: Path) -> Iterator[WorkerProcess]:
    """All roles in one process, the API included, as `streamrec up` runs them, with every part of
    reading reviews as opinions on (some are off by default), so that the tests exercise each
    through the pipeline, a rule that only items tagged `SESSION_EXCLUDED_TAG` are subject to, and
    image vectors of `SESSION_IMAGE_DIM` numbers, from producers or from a tiny image model."""
    stack = Stack(session_settings, log_dir=session_settings.data_dir / "logs")
    rules = session_settings.data_dir / "rules.toml"
    rules.write_text(f"exclude_tags = [{SESSION_EXCLUDED_TAG!r}]\n")
    process = stack.start_worker(
        ROLES,
        OPINIONS=json.dumps(list(PARTS)),
        RULES=str(rules),
        MODALITIES=json.dumps({"image": SESSION_IMAGE_DIM}),
        IMAGE_MODEL=str(tiny_clip),
    )
    try:
        stack.wait_ready(timeout=240)
        yield process
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def producer(session_settings: Settings) -> Iterator[Replayer]:
    replayer = Replayer(kafka_config(session_settings))
    yield replayer
    replayer.flush()


@pytest.fixture(scope="session")
def recommendations(session_settings: Settings, topics: Topics, worker: WorkerProcess) -> Iterator[Collector]:
    collector = Collector(kafka_config(session_settings), topics.recommendations)
    yield collector
    collector.close()


@pytest.fixture(scope="session")
def deadletters(session_settings: Settings, topics: Topics, worker: WorkerProcess) -> Iterator[Collector]:
    collector = Collector(kafka_config(session_settings), topics.deadletter)
    yield collector
    collector.close()


@pytest.fixture(scope="session")
def vectors(session_settings: Settings, topics: Topics, worker: WorkerProcess) -> Iterator[Collector]:
    collector = Collector(kafka_config(session_settings), topics.vectors)
    yield collector
    collector.close()


@pytest.fixture
def ns() -> str:
    """A namespace for ids, so tests sharing the worker never see each other's users."""
    return uuid.uuid4().hex[:6]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that ran workers shows the end of each worker's log, so that a failure seen
    only once (on a slower machine) says what the workers were doing."""
    report = yield
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and call.when == "call" and isinstance(tmp, Path):
        for log in sorted(tmp.rglob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            report.sections.append((f"last lines of {log.relative_to(tmp)}", "\n".join(lines[-60:])))
    return report
