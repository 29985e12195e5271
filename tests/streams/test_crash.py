"""Worker crashes: SIGKILL each role in the middle of a 20,000-event replay, restart it, and count.

Each role runs in its own process. With one partition the CF role learns in offset
order, so exactly-once learning has a sharp test: the recovered model must equal,
to float precision, a model that learned the same events once, in order, uninterrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streamrec.eval.datasets import load_dataset
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.dedupe import Deduplicator, fingerprint
from streamrec.model.events.parser import EventParser
from streamrec.streams.bench.cluster import end_offsets
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.consumer import own_group
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from tests.conftest import committed_up_to, wait_for
from tests.datasets import MOVIELENS, needs, require
from tests.streams.faults import kill_and_restart, unanswered

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_EVENTS = 20_000
#: Events between an item's catalog entry and its first click.
CATALOG_LEAD = 50


def _hr_at_10(model: OnlineCF, train: list, holdout: list, items: list[str]) -> float:
    """Prequential HR@10 on the holdout, continuing from `model` (test, then learn)."""
    seen: dict[str, set[str]] = {}
    for e in train:
        seen.setdefault(e.user, set()).add(e.item)
    hits = 0
    for e in holdout:
        scores = model.score_items(e.user, items)
        exclude = seen.get(e.user, set())
        top = [items[j] for j in np.argsort(-scores, kind="stable") if items[j] not in exclude][:10]
        hits += e.item in top
        model.learn_one(e.user, e.item, None)
        seen.setdefault(e.user, set()).add(e.item)
    return hits / len(holdout)


@needs(MOVIELENS)
def test_sigkill_of_each_role_loses_nothing_and_learns_nothing_twice(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = load_dataset(require(MOVIELENS))
    events = data.interactions[: N_EVENTS + 2000]
    stream, holdout = events[:N_EVENTS], events[N_EVENTS:]
    settings = make_settings("crash", tmp_path, partitions=1)
    topics = Topics.from_settings(settings)
    stack = Stack(settings, log_dir=tmp_path / "logs")
    stack.start_broker()
    workers = {role: stack.start_worker([role]) for role in ("cf", "encoder", "recommender")}
    config = kafka_config(settings)
    recs = Collector(config, topics.recommendations)
    vectors = Collector(config, topics.vectors)
    dead = Collector(config, topics.deadletter)
    producer = Replayer(config, keep_values=True)
    try:
        stack.wait_ready(timeout=240)
        # Catalog entries appear a little before an item's first click, so the encoder works all
        # along. Kafka orders nothing across topics: an entry sent just before the click could land
        # after it, and the click would rightly be dead-lettered as an unknown item.
        first_click: dict[str, int] = {}
        for i, e in enumerate(stream):
            first_click.setdefault(e.item, i)
        due: dict[int, list[str]] = {}
        for item, i in first_click.items():
            due.setdefault(max(0, i - CATALOG_LEAD), []).append(item)
        plan: list[tuple[str, dict, str]] = []
        introduced = set(first_click)
        for i, e in enumerate(stream):
            for item in due.get(i, []):
                title = data.item_texts.get(item) or f"item {item}"
                plan.append((topics.items, {"item_id": item, "title": title[:500], "ts": e.ts}, item))
            plan.append(
                (topics.clicks, {"user_id": e.user, "item_id": e.item, "event": "click", "ts": e.ts}, e.user)
            )

        kills = {
            len(plan) * 3 // 10: "cf",
            len(plan) * 5 // 10: "encoder",
            len(plan) * 7 // 10: "recommender",
        }
        resumed: dict[str, float] = {}
        for start, end in zip([0, *sorted(kills)], [*sorted(kills), len(plan)], strict=True):
            producer.replay(plan[start:end], rate=1500)
            if end in kills:
                role = kills[end]
                # A new event after the restart must come back as a recommendation within 30 s.
                probe = {
                    "user_id": f"probe-{role}",
                    "item_id": stream[0].item,
                    "event": "click",
                    "ts": stream[0].ts,
                }
                resumed[role] = kill_and_restart(stack, workers, role, producer, recs, topics.clicks, probe)
        producer.flush()

        # Every user's last click is answered; every catalog item got its text vector.
        wait_for(
            lambda: not unanswered(recs, producer, topics.clicks),
            240,
            interval=1.0,
            what="every user's last event to be answered",
        )
        wait_for(
            lambda: introduced <= {m["id"] for _, m in vectors.messages if m["name"] == "text"},
            120,
            what="a text vector for every catalog item",
        )
        print(
            "\nrecommendations resumed after restarting: "
            + ", ".join(f"{role} {seconds:.1f}s" for role, seconds in resumed.items())
        )
        for role, seconds in resumed.items():
            assert seconds < 30, f"recommendations resumed {seconds:.0f}s after restarting {role}"

        # Stop the CF role cleanly, once it has committed every click (which it does only after
        # checkpointing what it learned), and read its durable state.
        ends = end_offsets(producer.delivered, topics.clicks)
        wait_for(
            lambda: committed_up_to(config, own_group(settings, "cf"), topics.clicks, ends),
            60,
            what="the CF role to commit every click",
        )
        assert workers["cf"].stop() == 0
        stack.workers.remove(workers["cf"])
        saved = CheckpointStore.of(settings, "cf").load()
        assert saved is not None
        model: OnlineCF = saved.model["cf"]
    finally:
        recs.close()
        vectors.close()
        dead.close()
        stack.stop()

    probes = len(kills)
    assert producer.errors == [], "every event was delivered"
    assert [m for _, m in dead.messages] == [], "no valid click is dead-lettered"
    if model.n_learned != N_EVENTS + probes:
        cut = min(end for end, role in kills.items() if role == "cf")
        sent = sum(topic == topics.clicks for topic, _, _ in plan[:cut])
        missing = _unlearned(producer, topics.clicks, saved.model["seen"])
        raise AssertionError(
            f"each click learned exactly once: learned {model.n_learned} of {N_EVENTS + probes}; "
            f"never learned: {missing}; the CF role was killed after about {sent} clicks"
        )
    # The exact sequence the worker saw: the stream, with a probe click after each kill.
    reference = OnlineCF()
    for i, (topic, value, _) in enumerate(plan):
        if i in kills:
            reference.learn_one(f"probe-{kills[i]}", stream[0].item, None)
        if topic == topics.clicks:
            reference.learn_one(value["user_id"], value["item_id"], None)
    users = sorted({e.user for e in stream})[:50]
    items = sorted({e.item for e in stream})
    for user in users:
        assert np.allclose(model.score_items(user, items), reference.score_items(user, items), atol=1e-5)
    hr_recovered = _hr_at_10(model, stream, holdout, items)
    hr_reference = _hr_at_10(reference, stream, holdout, items)
    assert abs(hr_recovered - hr_reference) <= 0.02 * hr_reference


def _unlearned(producer: Replayer, topic: str, seen: Deduplicator) -> list[str]:
    """The delivered clicks whose fingerprint the CF role never recorded, by offset."""
    parser = EventParser()
    missing = []
    for d in producer.delivered:
        if d.topic == topic and d.value is not None:
            click = parser.click(d.value)
            if fingerprint("c", click.user_id, click.item_id, click.event, click.ts) not in seen:
                missing.append(f"offset {d.offset} ({click.user_id}, {click.item_id})")
    return missing
