"""A CF worker paused past its session timeout (SIGSTOP) while clicks flow, then resumed.

The group hands its partitions to the other worker, which learns them again from the last valid
commit. When the paused worker wakes it goes on learning what it had fetched and then commits:
the group's log finds the commit invalid (the other worker claimed the partitions first), so no
worker applies its item changes and it drops its learning back to its last valid checkpoint.
Durable state afterwards: every click learned by exactly one worker, and both workers hold the
same item factors (each the other's valid changes once, nobody the fenced ones).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.dedupe import Deduplicator, fingerprint
from streamrec.streams.bench.cluster import end_offsets
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.consumer import own_group
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack, WorkerProcess
from tests.conftest import committed_up_to, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_USERS, N_ITEMS, N_CLICKS = 400, 150, 9_000


def _clicks() -> list[dict]:
    rng = random.Random(7)
    weights = [1 / (1 + i) for i in range(N_ITEMS)]  # a long tail, like real catalogs
    items = rng.choices(range(N_ITEMS), weights, k=N_CLICKS)
    return [
        {"user_id": f"u{rng.randrange(N_USERS)}", "item_id": f"i{item}", "event": "click", "ts": 1e9 + n}
        for n, item in enumerate(items)
    ]


def _log_text(worker: WorkerProcess) -> str:
    assert worker.log_file is not None
    worker.log_file.flush()
    return Path(worker.log_file.name).read_text(errors="replace")


def test_a_worker_paused_past_its_session_is_fenced_and_nothing_counts_twice(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("fence", tmp_path, partitions=2)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    config = kafka_config(settings)
    # Checkpoints only every 30 s (and when idle): the paused worker surely holds uncommitted learning.
    cf = [
        stack.start_worker(["cf"], DATA_DIR=str(tmp_path / f"cf{n}"), CF__CHECKPOINT_INTERVAL_S="30")
        for n in range(2)
    ]
    paused, other = cf
    producer = Replayer(config)
    clicks = _clicks()
    try:
        stack.wait_ready(timeout=180)
        for n in range(N_ITEMS):
            producer.send(topics.items, {"item_id": f"i{n}", "title": f"item {n}", "ts": 0}, f"i{n}")
        producer.flush()
        sends = [(topics.clicks, c, c["user_id"]) for c in clicks]
        third = len(sends) // 3
        producer.replay(sends[:third], rate=1500)
        producer.flush()
        mark = f"assigned {topics.clicks}:"
        before = _log_text(other).count(mark)
        paused.process.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            # The other worker is given both partitions once the paused one's session runs out.
            wait_for(
                lambda: _log_text(other).count(mark) >= before + 2,
                120,
                what="the other worker to take the paused worker's partition",
            )
            producer.replay(sends[third : 2 * third], rate=1500)
            producer.flush()
        finally:
            paused.process.send_signal(signal.SIGCONT)
        print(f"\npaused for {time.monotonic() - stopped_at:.1f}s")
        producer.replay(sends[2 * third :], rate=1500)
        producer.flush()
        ends = end_offsets(producer.delivered, topics.clicks)
        wait_for(
            lambda: committed_up_to(config, own_group(settings, "cf"), topics.clicks, ends),
            180,
            what="the group to commit every click",
        )
        wait_for(lambda: "was fenced" in _log_text(paused), 60, what="the paused worker to be fenced")
        fenced = sum(v for k, v in paused.metric("streamrec_retries_total").items() if "cf_fenced" in k)
        time.sleep(3)  # each worker reads the other's last commit
        for worker in (paused, other):
            assert worker.stop() == 0
            stack.workers.remove(worker)
    finally:
        for worker in cf:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)
        stack.stop()

    assert producer.errors == []
    assert fenced >= 1
    states = [
        CheckpointStore.of(settings.model_copy(update={"data_dir": tmp_path / f"cf{n}"}), "cf").load()
        for n in range(2)
    ]
    models: list[OnlineCF] = [s.model["cf"] for s in states]  # type: ignore[union-attr]
    seen: list[Deduplicator] = [s.model["seen"] for s in states]  # type: ignore[union-attr]
    ids = [fingerprint("c", c["user_id"], c["item_id"], "click", c["ts"]) for c in clicks]
    by_worker = [sum(i in s for i in ids) for s in seen]
    twice = sum(i in seen[0] and i in seen[1] for i in ids)
    never = sum(i not in seen[0] and i not in seen[1] for i in ids)
    print(f"clicks learned per worker {by_worker}, twice {twice}, never {never}; fenced {fenced:.0f} time(s)")
    assert twice == 0 and never == 0
    assert sum(m.n_learned for m in models) == N_CLICKS
    items = [f"i{n}" for n in range(N_ITEMS)]
    a, b = (m.item_vectors(items) for m in models)
    assert np.allclose(a, b, atol=1e-4), f"item factors differ by up to {np.abs(a - b).max():.3g}"
