"""One sentiment model, learned by the encoder role, survives a restart: the same review reads the same.

The encoder role alone on topics of its own. It reads rated reviews and learns from them; a clean
stop checkpoints what it learned. Then it reads more reviews and is killed (SIGKILL) before its next
checkpoint: those reviews come again after the restart, and must read exactly as they did, with the
model the first run had checkpointed, which learned from the ratings (not the zero-shot prior).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.reader import ReviewReader
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

#: Rated reviews the model learns from first, written for this test.
TAUGHT = [
    ("Broke on the second day and the seller never answered.", 1),
    ("Cheap plastic, the knob fell off and it hums.", 1),
    ("Sounds thin and the strap snapped.", 2),
    ("Lovely tone, solid build, worth every cent.", 5),
    ("Works perfectly and it arrived the next day.", 5),
    ("Great strings, bright and they stay in tune.", 4),
] * 5
#: Reviews read, then read again after the kill.
READ_TWICE = [
    "Lovely warm tone, but the tuners slip.",
    "The case arrived crushed and the courier never answered.",
    "Setup took two minutes and it sounds great.",
    "Not bad for the money, though the cable is short.",
]


def _encoded(collector: Collector, user: str) -> list[dict]:
    return [m for _, m in collector.messages if m["user_id"] == user]


def test_the_same_review_reads_the_same_after_the_role_is_killed(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("sentiment", tmp_path, partitions=1)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    # No checkpoint by the clock: only the clean stop below writes one.
    env = {"ENCODER__CHECKPOINT_INTERVAL_S": "3600"}
    config = kafka_config(settings)
    encoded = Collector(config, topics.reviews_encoded)
    producer = Replayer(config)
    now = time.time()
    try:
        worker = stack.start_worker(["encoder"], **env)
        stack.wait_ready(timeout=240, workers=[worker])
        for n, (text, rating) in enumerate(TAUGHT):
            review = {"user_id": "teacher", "item_id": f"i{n % 7}", "text": text, "rating": rating}
            producer.send(topics.reviews, {**review, "ts": now, "review_id": f"t{n}"}, key="teacher")
        producer.flush()
        wait_for(lambda: len(_encoded(encoded, "teacher")) >= len(TAUGHT), 120, what="the taught reviews")
        assert worker.stop() == 0  # a clean stop: the checkpoint holds what the ratings taught
        checkpoint = settings.state_dir("encoder") / "checkpoint.pkl"
        taught_at = checkpoint.stat().st_mtime_ns

        worker = stack.start_worker(["encoder"], **env)
        stack.wait_ready(timeout=240, workers=[worker])
        for n, text in enumerate(READ_TWICE):
            producer.send(topics.reviews, {"user_id": "reader", "item_id": "i0", "text": text, "ts": now,
                                           "review_id": f"r{n}"}, key="reader")  # fmt: skip
        producer.flush()
        first = wait_for(
            lambda: (lambda got: got if len(got) >= len(READ_TWICE) else None)(_encoded(encoded, "reader")),
            120,
            what="the reviews read before the kill",
        )
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(30)
        assert checkpoint.stat().st_mtime_ns == taught_at, "no checkpoint between the clean stop and the kill"

        worker = stack.start_worker(["encoder"], **env)
        stack.wait_ready(timeout=240, workers=[worker])
        again = wait_for(
            lambda: (lambda got: got[len(READ_TWICE) :] if len(got) >= 2 * len(READ_TWICE) else None)(
                _encoded(encoded, "reader")
            ),
            120,
            what="the same reviews read again after the restart",
        )
        assert worker.stop() == 0
    finally:
        encoded.close()
        stack.stop()

    def reading(m: dict) -> tuple:
        return m["review_id"], m["polarity"], [(o["aspect"], o["polarity"], o["text"]) for o in m["opinions"]]

    assert [reading(m) for m in again] == [reading(m) for m in first[: len(READ_TWICE)]]
    # ...read by the model the ratings taught, not by a fresh one's prior.
    fresh = ReviewReader(TransformerEncoder(device="cpu", max_length=settings.encoder.max_length))
    prior = [round(r.polarity, 4) for r in fresh.read(READ_TWICE)]
    assert [m["polarity"] for m in first[: len(READ_TWICE)]] != prior
