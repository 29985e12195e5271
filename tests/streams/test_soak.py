"""Soak: a steady load for a long while (10 minutes by default) with bounded memory.

Not part of the default run (`-m soak` selects it; `make soak` runs it): it prints the
worker's resident memory along the way. The stream keeps adding state all along (each
user's seen items, co-occurrence counts, the duplicate filters), so memory is held to the
same measure as the benchmark's: between the end of the warm-up and the end of the run,
both taken with everything sent committed, RSS may grow at most 10% beyond the growth of
the state the roles hold, measured (not guessed) by rebuilding it under tracemalloc.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from streamrec.streams.bench.cluster import end_offsets
from streamrec.streams.bench.memory import cf_state, recommender_state, rss_mb, traced_mb
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.consumer import own_group
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import committed_up_to, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.soak]

DURATION_S = float(os.environ.get("STREAMREC_SOAK_S", "600"))
CLICKS_PER_S, REVIEWS_PER_S = 200, 2
USERS = 2_000
ITEMS = int(os.environ.get("STREAMREC_SOAK_ITEMS", "1000"))
#: Longest wait for every role to commit what was sent, before each memory measurement.
SETTLE_S = 600.0


def test_steady_load_keeps_memory_bounded(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings("soak", tmp_path)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    config = kafka_config(settings)
    worker = stack.start_worker()
    recs = Collector(config, topics.recommendations)
    samples: list[tuple[float, float]] = []
    try:
        stack.wait_ready(timeout=240)
        producer = Replayer(config)
        for i in range(ITEMS):
            producer.send(
                topics.items,
                {
                    "item_id": f"i{i}",
                    "title": f"Instrument accessory {i}",
                    "tags": [random.choice(["guitar", "drum", "violin", "piano"])],
                    "ts": time.time(),
                },
                f"i{i}",
            )
        producer.flush()
        time.sleep(10)
        process = psutil.Process(worker.process.pid)
        rng = random.Random(1)
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not stop.wait(10):
                samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))

        rec_group = own_group(settings, "recommender")
        # Who reads each input: clicks cf and the recommender, reviews cf and the encoder.
        groups = {
            topics.clicks: [own_group(settings, "cf"), rec_group],
            topics.reviews: [own_group(settings, "cf"), own_group(settings, "encoder")],
        }

        def settled(producer: Replayer) -> tuple[float, float]:
            """RSS and state (MiB) once every role has committed all that was sent."""
            producer.flush()
            waiting = time.monotonic()
            for topic in (topics.clicks, topics.reviews):
                ends = end_offsets(producer.delivered, topic)
                for group in groups[topic]:
                    wait_for(
                        lambda group=group, topic=topic, ends=ends: committed_up_to(
                            config, group, topic, ends
                        ),
                        SETTLE_S,
                        what=f"{group} to commit {topic}",
                    )
            # A worker that keeps up settles in seconds; one that fell behind shows here.
            print(f"\n  settled {time.monotonic() - waiting:.0f}s after the last event was delivered")
            rss = rss_mb(process.pid)
            state = traced_mb(cf_state(settings)) + traced_mb(recommender_state(settings))
            return rss, state

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        sent = 0
        warm_up = min(120.0, DURATION_S / 3)
        points: dict[str, tuple[float, float]] = {}
        while time.monotonic() - started < DURATION_S:
            if "warm" not in points and time.monotonic() - started >= warm_up:
                points["warm"] = settled(producer)
            second = time.monotonic()
            for _ in range(CLICKS_PER_S):
                user = f"u{rng.randrange(USERS)}"
                producer.send(
                    topics.clicks,
                    {
                        "user_id": user,
                        "item_id": f"i{rng.randrange(ITEMS)}",
                        "event": "click",
                        "ts": time.time(),
                    },
                    user,
                )
            for _ in range(REVIEWS_PER_S):
                user = f"u{rng.randrange(USERS)}"
                producer.send(
                    topics.reviews,
                    {
                        "user_id": user,
                        "item_id": f"i{rng.randrange(ITEMS)}",
                        "text": rng.choice(
                            ["Great tone.", "Broke after a week.", "Good value for the price."]
                        ),
                        "rating": rng.randint(1, 5),
                        "ts": time.time(),
                    },
                    user,
                )
            sent += CLICKS_PER_S + REVIEWS_PER_S
            time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
        points["end"] = settled(producer)
        stop.set()
        sampler.join()
        assert worker.process.poll() is None
        lag = sum(worker.metric("streamrec_consumer_lag").values())
    finally:
        recs.close()
        stack.stop()
    print(
        f"\nsoak: {sent} events over {DURATION_S:.0f}s, {len(recs.messages)} recommendations, "
        f"final lag {lag:.0f}"
    )
    for t, rss in samples[:: max(1, len(samples) // 12)]:
        print(f"  t={t:5.0f}s rss={rss:7.1f} MiB")
    (rss_warm, state_warm), (rss_end, state_end) = points["warm"], points["end"]
    growth = (rss_end - rss_warm) / rss_warm
    beyond = ((rss_end - rss_warm) - (state_end - state_warm)) / rss_warm
    print(
        f"  after warm-up: rss {rss_warm:.1f} -> {rss_end:.1f} MiB ({growth:+.1%}), "
        f"state {state_warm:.1f} -> {state_end:.1f} MiB, growth beyond state {beyond:+.1%}"
    )
    assert beyond < 0.10, f"memory grew {beyond:.1%} beyond the roles' state after warm-up"
