"""Worker crashes while reviews flow: SIGKILL the encoder, then the recommender, restart each, count.

Each role runs in its own process. A review killed in the encoder is read again after its restart
(the same key on `reviews-encoded`), a review killed in the recommender comes again from its last
checkpoint: either way each review must reach its author's profile once (the `reviews` count of
the latest readable profile equals the reviews the user wrote) and the recommender's counts
once (its checkpoint after the run counts each item's reviews exactly), every author's last review is
answered, and lists must resume within 30 s of each restart.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.model.events.dedupe import review_id
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import wait_for
from tests.streams.faults import kill_and_restart, unanswered

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_USERS, N_ITEMS, N_REVIEWS = 30, 24, 180
KINDS = ["guitar strap", "clip-on tuner", "capo", "drum sticks", "patch cable", "mic stand"]
PRAISE = [
    "The sound is warm and clear.",
    "Solid build, it feels like it will last.",
    "Great value for the money.",
    "Setup took two minutes and it just works.",
    "It arrived the next day, well packed.",
]
COMPLAINTS = [
    "It broke within a week.",
    "Cheap plastic, the knob fell off.",
    "Way overpriced for what you get.",
    "The instructions were useless and setup was a pain.",
    "The seller never answered my emails.",
]


def _reviews(ts: float) -> list[dict]:
    rng = random.Random(11)
    out = []
    for n in range(N_REVIEWS):
        rating = rng.choice([1, 2, 4, 5, 5])
        said = rng.sample(PRAISE if rating >= 4 else COMPLAINTS, 2)
        out.append(
            {
                "user_id": f"u{rng.randrange(N_USERS)}",
                "item_id": f"i{rng.randrange(N_ITEMS)}",
                "text": " ".join(said),
                "rating": rating,
                "ts": ts + n,
                "review_id": f"r{n}",
            }
        )
    return out


def test_sigkill_of_encoder_and_recommender_while_reviews_flow_reads_each_review_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings("crash-reviews", tmp_path, partitions=1)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    workers = {role: stack.start_worker([role]) for role in ("cf", "encoder", "recommender")}
    config = kafka_config(settings)
    recs = Collector(config, topics.recommendations)
    profiles = Collector(config, topics.profiles)
    producer = Replayer(config)
    now = time.time()
    reviews = _reviews(now - 86_400)
    try:
        stack.wait_ready(timeout=240)
        for n in range(N_ITEMS):
            item = {"item_id": f"i{n}", "title": f"{KINDS[n % len(KINDS)]} model {n}", "ts": now}
            producer.send(topics.items, item, f"i{n}")
        producer.flush()
        plan = [(topics.reviews, r, r["user_id"]) for r in reviews]
        kills = {len(plan) // 3: "encoder", 2 * len(plan) // 3: "recommender"}
        resumed: dict[str, float] = {}
        for start, end in zip([0, *sorted(kills)], [*sorted(kills), len(plan)], strict=True):
            producer.replay(plan[start:end], rate=12)
            if end not in kills:
                continue
            role = kills[end]
            # A new review after the restart must come back as a recommendation.
            probe = {"user_id": f"probe-{role}", "item_id": "i0", "text": PRAISE[0], "rating": 5, "ts": now,
                     "review_id": f"probe-{role}"}  # fmt: skip
            resumed[role] = kill_and_restart(stack, workers, role, producer, recs, topics.reviews, probe)
        producer.flush()

        written: dict[str, int] = {}
        for r in reviews:
            written[r["user_id"]] = written.get(r["user_id"], 0) + 1

        def read() -> dict[str, int]:
            latest = {m["user_id"]: m["reviews"] for _, m in profiles.messages if m is not None}
            return {user: latest.get(user, 0) for user in written}

        wait_for(
            lambda: all(n >= written[u] for u, n in read().items()), 240, what="every review in its profile"
        )
        wait_for(
            lambda: not unanswered(recs, producer, topics.reviews),
            120,
            interval=1.0,
            what="every author's last review answered",
        )
        time.sleep(2)  # a review applied twice would show in a profile written after the first
        counts = read()
        assert workers["recommender"].stop() == 0
        stack.workers.remove(workers["recommender"])
        saved = CheckpointStore.of(settings, "recommender").load()
    finally:
        recs.close()
        profiles.close()
        stack.stop()

    print(
        "\nrecommendations resumed after restarting: "
        + ", ".join(f"{role} {seconds:.1f}s" for role, seconds in resumed.items())
    )
    assert producer.errors == []
    twice = {u: (counts[u], written[u]) for u in written if counts[u] != written[u]}
    assert not twice, f"reviews in each profile (read, written), where they differ: {twice}"
    # The counts go with the duplicate filter: each review once in both, none lost, none twice.
    assert saved is not None
    unseen = [
        r["review_id"] for r in reviews if review_id(r["user_id"], r["review_id"]) not in saved.model["seen"]
    ]
    assert not unseen, f"reviews the recommender's duplicate filter never saw: {unseen}"
    expected: dict[str, int] = {"i0": len(resumed)}  # each probe is a review of i0
    for r in reviews:
        expected[r["item_id"]] = expected.get(r["item_id"], 0) + 1
    popularity = saved.model["aggregates"]["popularity"]
    wrong = {i: (popularity.takes(i), n) for i, n in expected.items() if popularity.takes(i) != n}
    assert not wrong, f"reviews counted per item (counted, written), where they differ: {wrong}"
    for role, seconds in resumed.items():
        assert seconds < 30, f"recommendations resumed {seconds:.0f}s after restarting {role}"
