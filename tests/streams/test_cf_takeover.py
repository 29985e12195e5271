"""A CF worker killed after its commit reached the group's log and before its checkpoint was put in
place: the process that takes its state directory resumes from the staged checkpoint.

The group's log already counts that commit (its offsets are where the partition resumes), so the
staged file is the only model behind it. The successor reads the crashed worker's item changes
off the log before it claims anything; checkpointing them first would stage over the file and
resume the partition at the commit's offsets with an empty model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.model.cf.fence import Claim
from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.schemas import Click
from streamrec.streams.bench.cluster import end_offsets
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.consumer import own_group
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.messages import group_message
from streamrec.streams.replay import Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import committed_up_to, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_ITEMS, N_USERS, N_BEFORE, N_AFTER = 60, 80, 1_500, 500


def _clicks() -> list[dict]:
    rng = random.Random(11)
    return [
        {
            "user_id": f"u{rng.randrange(N_USERS)}",
            "item_id": f"i{rng.randrange(N_ITEMS)}",
            "event": "click",
            "ts": 1e9 + n,
        }
        for n in range(N_BEFORE + N_AFTER)
    ]


def test_a_checkpoint_staged_behind_a_valid_commit_is_resumed_from(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("takeover", tmp_path, partitions=1)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    producer = Replayer(kafka_config(settings))
    clicks = _clicks()
    for n in range(N_ITEMS):
        producer.send(topics.items, {"item_id": f"i{n}", "title": f"item {n}", "ts": 0}, f"i{n}")
    for click in clicks:
        producer.send(topics.clicks, click, click["user_id"])
    producer.flush()

    # The crashed worker: it learned the first clicks, staged its checkpoint, wrote its item
    # changes and its commit to the group's log, and died before putting the checkpoint in place.
    cfg = settings.cf
    crashed = Learner(
        OnlineCF(n_factors=cfg.n_factors, n_negatives=cfg.n_negatives, lr=cfg.lr), worker="crashed"
    )
    crashed.catalog = {f"i{n}" for n in range(N_ITEMS)}
    for click in clicks[:N_BEFORE]:
        assert crashed.learn(Click(**click))
    clicks_tp = f"{topics.clicks}:0"
    parts, commit = crashed.share({clicks_tp: (N_BEFORE, "claim-1")})
    assert parts, "the crashed worker's item changes are on the log for its successor to read"
    store = CheckpointStore.of(settings, "cf")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.stage(store.dumps({**crashed.state(), "attempt": commit.attempt}, {clicks_tp: N_BEFORE}))
    for message in [Claim("crashed", {clicks_tp: "claim-1"}), *parts, commit]:
        producer.send(topics.cf_deltas, group_message(message), "crashed")
    producer.flush()
    assert producer.errors == []

    worker = stack.start_worker(["cf"])
    try:
        stack.wait_ready(timeout=180)
        ends = end_offsets(producer.delivered, topics.clicks)
        wait_for(
            lambda: committed_up_to(kafka_config(settings), own_group(settings, "cf"), topics.clicks, ends),
            120,
            what="the successor to commit every click",
        )
        assert worker.stop() == 0
        stack.workers.remove(worker)
    finally:
        stack.stop()

    saved = store.load()
    assert saved is not None
    assert saved.model["worker"] == "crashed", "the successor carries on under the crashed worker's name"
    assert saved.offsets[clicks_tp] == N_BEFORE + N_AFTER
    model: OnlineCF = saved.model["cf"]
    assert model.n_learned == N_BEFORE + N_AFTER, (
        f"{model.n_learned} clicks learned: the staged checkpoint's {N_BEFORE} were lost"
    )
