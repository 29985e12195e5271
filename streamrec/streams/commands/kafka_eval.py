"""Prequential evaluation of the live system: replay a dataset through the pipeline (broker,
workers, Qdrant) and score the recommendations that arrive on the topic.

Each event is scored against the latest list the system had published for its user before
the event was produced, as a client would have seen it; then the event itself is produced
and the pipeline learns from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.eval.interactions import Dataset, Interaction
from streamrec.model.metrics.online import ReplayScorer
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack

__all__ = ["evaluate_through_kafka"]

Progress = Callable[[str, int, int], None]


def _events(data: Dataset, topics: Topics) -> Iterator[tuple[str, dict[str, Any], str, Interaction]]:
    for e in data.interactions:
        if e.text and e.text.strip():
            value: dict[str, Any] = {"user_id": e.user, "item_id": e.item, "text": e.text, "ts": e.ts}
            if e.rating is not None and 1 <= e.rating <= 5:
                value["rating"] = e.rating
            yield topics.reviews, value, e.user, e
        else:
            # The contract has no rating-only event: a rating without text travels as a click.
            yield (
                topics.clicks,
                {"user_id": e.user, "item_id": e.item, "event": "click", "ts": e.ts},
                e.user,
                e,
            )


def evaluate_through_kafka(
    data: Dataset,
    settings: Settings,
    work_dir: Path,
    rate: float = 200.0,
    ks: tuple[int, ...] = (10, 20),
    cold_threshold: int = 5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the pipeline on `data` and return its metrics per slice, plus what it took.

    Starts the embedded broker unless `settings.kafka_bootstrap` is set, and one worker with
    every role, under a topic prefix of its own. Events are produced at `rate` per second so
    that the measurement is of a system keeping up, as in production, not of a backlog.
    """
    prefix = f"{settings.topic_prefix}eval-{uuid.uuid4().hex[:6]}-"
    settings = settings.model_copy(update={"topic_prefix": prefix, "data_dir": work_dir})
    topics = Topics.from_settings(settings)
    scorer = ReplayScorer(ks=ks, cold_threshold=cold_threshold)
    started = time.monotonic()
    with Stack(settings, log_dir=work_dir / "logs") as stack:
        stack.start_broker()
        stack.start_worker()
        stack.wait_ready(timeout=300)
        config = kafka_config(settings, stack.bootstrap)
        fetch_wait = settings.fetch_max_wait_ms  # the broker's own: an external one may be slow
        recs = Collector(config, topics.recommendations, fetch_wait_ms=fetch_wait)
        vectors = Collector(config, topics.vectors, fetch_wait_ms=fetch_wait)
        producer = Replayer(config)
        items = sorted({e.item for e in data.interactions})
        described = {i for i in items if data.item_texts.get(i)}
        for n, item in enumerate(items):
            # An item without text gets its id as title, which the encoder does not encode.
            title = (data.item_texts.get(item) or item)[:1000]
            producer.send(topics.items, {"item_id": item, "title": title, "ts": 0}, item)
            if progress is not None and n % 500 == 0:
                progress("catalog", n, len(items))
        producer.flush()
        while not described <= {m["id"] for _, m in vectors.messages if m["name"] == "text"}:
            time.sleep(0.2)
        vectors.close()

        events = list(_events(data, topics))
        produced_at: list[float] = []
        pace_started = time.monotonic()
        for n, (topic, value, key, _) in enumerate(events):
            due = pace_started + n / rate
            while (wait := due - time.monotonic()) > 0:
                time.sleep(min(wait, 0.05))
            produced_at.append(time.time())
            producer.send(topic, value, key)
            if progress is not None and n % 200 == 0:
                progress("replay", n, len(events))
        producer.flush(timeout=120)
        if progress is not None:
            progress("replay", len(events), len(events))
        # Let the last events' recommendations arrive before scoring (they score nothing, but a
        # system that stopped answering would show as unscored events).
        drain_until = time.monotonic() + 60
        last = len(recs.messages)
        while time.monotonic() < drain_until:
            time.sleep(2.0)
            if len(recs.messages) == last:
                break
            last = len(recs.messages)
        recs.close()
        messages = sorted(recs.messages, key=lambda m: m[1]["generated_at"])
    elapsed = time.monotonic() - started

    # Feed the scorer in wall-clock order: lists published before an event may score it.
    latencies = [arrived - m["trigger"]["ts"] for arrived, m in messages]
    cursor = 0
    for (_, _, _, event), at in zip(events, produced_at, strict=True):
        while cursor < len(messages) and messages[cursor][1]["generated_at"] <= at:
            msg = messages[cursor][1]
            scorer.on_recommendation(
                msg["user_id"], [i["item_id"] for i in msg["items"]], msg["generated_at"]
            )
            cursor += 1
        scorer.on_event(event.user, event.item, at)
    slices = scorer.result()
    return {
        "slices": slices,
        "protocol": {
            "events": len(events),
            "rate_per_s": rate,
            "unscored_events": scorer.n_unscored,
            "recommendations": len(messages),
            "latency_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1) if latencies else None,
            "latency_p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1) if latencies else None,
            "wall_seconds": round(elapsed, 1),
            "note": "each event scored against the latest list published for its user before the event "
            "was produced; ratings without text travel as clicks (no MAE through Kafka)",
        },
    }
