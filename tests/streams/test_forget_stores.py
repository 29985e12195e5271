"""Forgetting leaves nothing: every store read directly after a `forget` request, and again after
the worker restarted from its checkpoints and changelogs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamrec.streams.commands.cli import app
from streamrec.streams.commands.holdings import Holding, user_holdings
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from streamrec.streams.worker import ROLES
from tests.conftest import wait_for
from tests.streams.test_pipeline import NOW, _catalog, _latest

pytestmark = pytest.mark.broker

CATALOG = {"a": "Guitar strap, leather", "b": "Guitar tuner, clip-on", "c": "Drum sticks, hickory"}


def test_nothing_of_a_forgotten_user_is_left_in_any_store_nor_after_a_restart(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("forget", tmp_path, partitions=1, deadletter_retention_days=3)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    ns = "f"
    gone, stays = f"{ns}-gone", f"{ns}-stays"
    config = kafka_config(settings)
    worker = stack.start_worker(ROLES)
    producer = Replayer(config)
    vectors = Collector(config, topics.vectors)
    recs = Collector(config, topics.recommendations)
    audit = Collector(config, topics.audit)
    dead = Collector(config, topics.deadletter)  # (parsed values: the keys are read by holdings)
    try:
        stack.wait_ready(timeout=240)
        _catalog(vectors, producer, topics, ns, CATALOG)
        # `gone` takes a and b (b only they take) and reviews b; `stays` takes a and c.
        for n, (user, item) in enumerate([(gone, "a"), (stays, "a"), (gone, "b"), (stays, "c")]):
            click = {"user_id": user, "item_id": f"{ns}-{item}", "event": "click", "ts": NOW + n}
            producer.send(topics.clicks, click, key=user)
        review = {"user_id": gone, "item_id": f"{ns}-b", "text": "Holds tune, clips on tight.", "rating": 5}
        producer.send(topics.reviews, {**review, "ts": NOW + 10}, key=gone)
        producer.send(topics.clicks, {"user_id": gone, "item_id": f"{ns}-a", "event": "teleport"}, key=gone)
        producer.flush()
        wait_for(lambda: _latest(recs, gone, topic=topics.reviews), 90, what="the review's recommendation")
        wait_for(lambda: dead.messages, 30, what="the dead letter")
        wait_for(
            lambda: any(m["kind"] == "user" and m["id"] == gone for _, m in vectors.messages),
            30,
            what="the user's cf vector",
        )
        # Before the request every store holds the user, read with the worker stopped (local-mode
        # Qdrant serves one process): the checks after it can fail.
        worker.stop()
        stack.workers.remove(worker)
        stores = _stores(settings, topics)
        before = _holding(settings, gone)
        assert {_store_of(s) for s in before} >= stores, (stores, before)
        popularity, takes = _counts(settings)["b"]
        assert popularity > 0 and takes == 2  # a click and a review of b, both by `gone`
        worker = stack.start_worker(ROLES)
        stack.wait_ready(timeout=240)

        producer.send(topics.forget, {"user_id": gone}, key=gone)
        producer.flush()
        wait_for(
            lambda: {m["role"] for _, m in audit.messages if m["user_id"] == gone} >= {"cf", "recommender"},
            30,
            what="audit records",
        )
        worker.stop()
        stack.workers.remove(worker)
        _assert_nothing_of(settings, gone)

        # Restarted from its checkpoints and changelogs, the worker holds nothing of them either,
        # and still serves the others.
        worker = stack.start_worker(ROLES)
        stack.wait_ready(timeout=240)
        offset = len(recs.messages)
        producer.send(
            topics.clicks,
            {"user_id": stays, "item_id": f"{ns}-c", "event": "click", "ts": NOW + 20},
            key=stays,
        )
        producer.flush()
        wait_for(
            lambda: any(m["user_id"] == stays for _, m in recs.messages[offset:]),
            60,
            what="a list after restart",
        )
        worker.stop()
        stack.workers.remove(worker)
        _assert_nothing_of(settings, gone)
        assert _counts(settings)["c"][1] == 2  # the restarted worker counts on
        # The command says so too (and that the other user is held).
        options = ["--kafka-bootstrap", stack.bootstrap, "--topic-prefix", settings.topic_prefix]
        options += ["--data-dir", str(settings.data_dir)]
        said = CliRunner().invoke(app, ["holdings", gone, *options])
        assert said.exit_code == 0, said.output
        assert "cf checkpoint: nothing" in said.output and "kept 3 days" in said.output
        assert CliRunner().invoke(app, ["holdings", stays, *options]).exit_code == 3
    finally:
        for collector in (vectors, recs, audit, dead):
            collector.close()
        stack.stop()


def _holding(settings: Settings, user: str) -> dict[str, list[str]]:
    return {h.store: h.found for h in user_holdings(settings, user) if h.found}


def _counts(settings: Settings) -> dict[str, tuple[float, int]]:
    """Per item of the catalog: its popularity count and its takes, in the recommender's checkpoint."""
    saved = CheckpointStore.of(settings, "recommender").load()
    assert saved is not None
    aggregates: dict[str, Any] = saved.model["aggregates"]
    return {
        item: (aggregates["popularity"].count(f"f-{item}"), aggregates["popularity"].takes(f"f-{item}"))
        for item in CATALOG
    }


def _stores(settings: Settings, topics: Topics) -> set[str]:
    """Every place a user's data reaches, named here and not taken from the code under test: each
    role's checkpoint, the compacted topics keyed by user, the profile table's changelog, the
    API's snapshots, the dead letters, and Qdrant's user points."""
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    names = AdminClient(kafka_config(settings)).list_topics(timeout=10).topics
    changelogs = {
        n for n in names if n.startswith(settings.topic_prefix) and n.endswith("profiles-changelog")
    }
    assert len(changelogs) == 1, changelogs
    keyed = {
        topics.recommendations,
        topics.profiles,
        topics.vectors,
        topics.reviews_encoded,
        topics.deadletter,
        topics.api_snapshots,
    }
    checkpoints = {"cf checkpoint", "recommender checkpoint", "api checkpoint"}
    return checkpoints | {"qdrant"} | {f"topic {n}" for n in keyed | changelogs}


def _store_of(store: str) -> str:
    """A holding's store without what it says in brackets of how it was read."""
    return store.split(" (")[0]


def _assert_nothing_of(settings: Settings, user: str) -> None:
    holdings = user_holdings(settings, user)
    expected = _stores(settings, Topics.from_settings(settings))
    read = {_store_of(h.store) for h in holdings}
    # Every store was read: the checkpoints of the roles, each compacted topic, Qdrant.
    assert read >= expected, f"stores not read: {expected - read}"
    assert all(not h.note.startswith("not read") and h.note != "no such topic" for h in holdings), holdings
    dead: Holding = next(h for h in holdings if "deadletter" in h.store)
    # Dead letters cannot be taken out of a log: they are kept the stated retention, then deleted.
    assert dead.found and dead.note.startswith("kept 3 days"), dead
    left = {h.store: h.found for h in holdings if h.found and h is not dead}
    assert not left, f"still held of {user}: {left}"
    saved = CheckpointStore.of(settings, "recommender").load()
    assert saved is not None
    cooccurrence = saved.model["aggregates"]["cooccurrence"]
    # b was taken by the forgotten user alone: no pair with it is left, nor any count of it.
    assert _counts(settings)["b"] == (0.0, 0)
    assert cooccurrence.count("f-b") == 0
    assert "f-b" not in cooccurrence._rows and all("f-b" not in row for row in cooccurrence._rows.values())
