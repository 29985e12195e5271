"""A user's profile follows their partition to the next recommender process: the process that takes
the partition over, with a state directory of its own, reads the profiles back from
`profiles-changelog` before it reads the partition's events, so its lists leave out what the user
took while the first process owned them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_ITEMS = 12
#: What the user takes while the first process owns their partition.
TAKEN = [f"i{n}" for n in range(5)]


def _last(producer: Replayer, topic: str) -> int:
    """The offset of the last message delivered to `topic` (one partition)."""
    return max(d.offset for d in producer.delivered if d.topic == topic)


def _answer(collector: Collector, user: str, offset: int) -> dict | None:
    """The user's list that answers the click at `offset` (a batch answers its last click)."""
    lists = (m for _, m in collector.messages if m.get("user_id") == user)
    return next((m for m in lists if m["trigger"]["offset"] == offset), None)


def test_a_profile_follows_its_partition_to_the_next_process(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("handover", tmp_path, partitions=1)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    config = kafka_config(settings)
    producer = Replayer(config)
    lists = Collector(config, topics.recommendations)
    ts = 1e9

    def click(user: str, item: str) -> None:
        nonlocal ts
        ts += 1
        producer.send(topics.clicks, {"user_id": user, "item_id": item, "event": "click", "ts": ts}, user)

    def crowd() -> None:
        """Other users take every item, so that each is a popular candidate for anyone."""
        for n in range(N_ITEMS):
            for k in range(3):
                click(f"other{k}", f"i{n}")

    for n in range(N_ITEMS):
        producer.send(topics.items, {"item_id": f"i{n}", "title": f"item {n}", "ts": 0}, f"i{n}")
    try:
        first = stack.start_worker(["encoder", "recommender"], DATA_DIR=str(tmp_path / "first"))
        stack.wait_ready(timeout=180, workers=[first])
        crowd()
        for item in TAKEN:
            click("ann", item)
        producer.flush()
        wait_for(
            lambda: _answer(lists, "ann", _last(producer, topics.clicks)),
            60,
            what="ann's list from the first",
        )
        assert first.stop() == 0
        stack.workers.remove(first)

        second = stack.start_worker(["encoder", "recommender"], DATA_DIR=str(tmp_path / "second"))
        stack.wait_ready(timeout=180, workers=[second])
        crowd()  # the second process's own counts: it starts from none
        click("ann", "i5")
        producer.flush()
        last = _last(producer, topics.clicks)
        answered = wait_for(lambda: _answer(lists, "ann", last), 60, what="ann's list from the second")
        assert second.stop() == 0
    finally:
        lists.close()
        stack.stop()

    listed = [item["item_id"] for item in answered["items"]]
    assert listed, "a list from the second process's candidates"
    # What ann took while the first process owned her partition is in her profile there too.
    assert not set(listed) & {*TAKEN, "i5"}, listed
