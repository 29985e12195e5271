"""An API process restarted from its checkpoint reads the event topics on from where it stopped,
not from their beginning, and serves what it read before and after; a new process given that
checkpoint (`api_seed`) starts from it, and one given nothing from the snapshot the last one
published to the topic as it stopped."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack, WorkerProcess
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_ITEMS, N_USERS, N_FIRST, N_THEN = 40, 60, 2_000, 300


def _clicks(n: int, first_ts: float, users: str) -> list[dict]:
    rng = random.Random(first_ts)
    return [
        {
            "user_id": f"{users}{rng.randrange(N_USERS)}",
            "item_id": f"i{rng.randrange(N_ITEMS)}",
            "event": "click",
            "ts": first_ts + k,
        }
        for k in range(n)
    ]


def _clicks_read(worker: WorkerProcess, topic: str) -> float:
    return sum(v for k, v in worker.metric("streamrec_events_consumed_total").items() if f'"{topic}"' in k)


def test_a_restarted_api_reads_on_from_its_checkpoint(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("apirestart", tmp_path, partitions=2)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    producer = Replayer(kafka_config(settings))
    for n in range(N_ITEMS):
        producer.send(topics.items, {"item_id": f"i{n}", "title": f"item {n}", "ts": 0}, f"i{n}")
    first, then = _clicks(N_FIRST, 1e9, "u"), _clicks(N_THEN, 1e9 + N_FIRST, "v")
    for click in first:
        producer.send(topics.clicks, click, click["user_id"])
    producer.flush()
    try:
        api = stack.start_worker(["api"])
        stack.wait_ready(timeout=180)
        wait_for(lambda: _clicks_read(api, topics.clicks) >= N_FIRST, 60, what="the first clicks read")
        assert api.stop() == 0
        stack.workers.remove(api)

        for click in then:
            producer.send(topics.clicks, click, click["user_id"])
        producer.flush()
        api = stack.start_worker(["api"])
        stack.wait_ready(timeout=180)
        wait_for(lambda: _clicks_read(api, topics.clicks) >= N_THEN, 60, what="the new clicks read")
        # Only what came after the checkpoint is read again.
        assert _clicks_read(api, topics.clicks) == N_THEN
        with httpx.Client(base_url=api.api_url, timeout=10) as client:
            for user in (first[0]["user_id"], then[-1]["user_id"]):
                wait_for(
                    lambda u=user: client.get(f"/v1/users/{u}/profile").status_code == 200,  # type: ignore[misc]
                    30,
                    what=f"{user}'s profile",
                )
        assert api.stop() == 0
        stack.workers.remove(api)

        # A new process, with a state directory of its own, starts from that checkpoint; one given
        # nothing, from the snapshot the last one published as it stopped. Neither reads a click.
        seed = CheckpointStore.of(settings, "api").path
        starts = {
            "the seed": {"DATA_DIR": str(tmp_path / "replica"), "API_SEED": str(seed)},
            f"the latest snapshot on {topics.api_snapshots}": {"DATA_DIR": str(tmp_path / "bare")},
        }
        for source, env in starts.items():
            api = stack.start_worker(["api"], **env)
            stack.wait_ready(timeout=180)
            with httpx.Client(base_url=api.api_url, timeout=10) as client:
                assert client.get(f"/v1/users/{then[-1]['user_id']}/profile").status_code == 200
            assert _clicks_read(api, topics.clicks) == 0
            assert api.stop() == 0
            stack.workers.remove(api)
            log = (tmp_path / "logs" / f"worker-api-{api.metrics_port}.log").read_text()
            assert f"api copy restored from {source}" in log
    finally:
        stack.stop()

    saved = CheckpointStore.of(settings, "api").load()
    assert saved is not None
    popularity = saved.model["aggregates"]["popularity"]
    for n in range(N_ITEMS):
        item = f"i{n}"
        taken = sum(c["item_id"] == item for c in first + then)
        assert popularity.takes(item) == taken, item
