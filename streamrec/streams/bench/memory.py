"""Memory per role: peak RSS of each worker after N and 2N events, beside its own state.

Each role runs in a process of its own (cf and recommender on `n` clicks, the encoder on
`texts` reviews), so each figure belongs to one role. A role's own state is measured, not
guessed: what it checkpoints (and, for the recommender, the user profiles of its table, the
vectors it indexes and its points in Qdrant local mode) is rebuilt in this process under
`tracemalloc`, giving the bytes those objects take in memory. Growth beyond that state, as
a share of the RSS at N, is what the benchmark holds against its limit:

    growth_beyond_state_pct = 100 * ((rss_2n - rss_n) - (state_2n - state_n)) / rss_n
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from qdrant_client import QdrantClient

from streamrec.model.users.profile import UserProfile
from streamrec.streams.bench.cluster import Phase, end_offsets, metric_total, wait_until
from streamrec.streams.bench.workload import Workload
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.messages import is_version_marker, parse_vector, parse_vector_key
from streamrec.streams.replay import Replayer
from streamrec.streams.roles.recommender.shared import make_recommender
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from streamrec.streams.vectors.qdrant import QdrantIndex
from streamrec.streams.worker import text_dim

__all__ = [
    "bench_memory",
    "cf_state",
    "peak_rss_mb",
    "read_latest",
    "recommender_state",
    "rss_mb",
    "traced_mb",
]

Say = Callable[[str], None]
MB = 1024.0 * 1024.0


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


def peak_rss_mb(pid: int) -> float:
    """Peak RSS since the process started (Linux `VmHWM`); the current RSS elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return rss_mb(pid)


def traced_mb(build: Callable[[], Any]) -> float:
    """Memory held by what `build` returns, measured with tracemalloc while it is alive.

    >>> 7.0 < traced_mb(lambda: bytearray(8 * 1024 * 1024)) < 9.0
    True
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        size = tracemalloc.get_traced_memory()[0] - before
        del kept
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0.0, size / MB)


def read_latest(config: dict[str, Any], topic: str, timeout: float = 60.0) -> dict[bytes, bytes]:
    """The live value of every key of a (compacted) topic, read from the beginning to its end."""
    consumer = Consumer({**config, "group.id": "streamrec-bench", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.2):
                if msg.error():
                    continue
                key, value, partition = msg.key() or b"", msg.value(), int(msg.partition() or 0)
                if value is None:
                    latest.pop(key, None)
                else:
                    latest[key] = value
                if int(msg.offset() or 0) + 1 >= ends[partition]:
                    pending.discard(partition)
        return latest
    finally:
        consumer.close()


def cf_state(settings: Settings) -> Callable[[], Any]:
    """A builder of what the CF role holds: its checkpoint, loaded."""
    store = CheckpointStore.of(settings, "cf")
    return lambda: store.load()


def recommender_state(settings: Settings) -> Callable[[], Any]:
    """A builder of everything the recommender holds per user and per item: its checkpoint,
    its profiles (the bytes, and the profiles decoded as its cache keeps them), the CF
    vectors it indexes, and the same points in Qdrant local mode, which a recommender holds
    in memory."""
    config = kafka_config(settings)
    topics = Topics.from_settings(settings)
    store = CheckpointStore.of(settings, "recommender")
    table = read_latest(config, topics.profiles_changelog)
    vectors = read_latest(config, topics.vectors)
    half_life = settings.recommender.half_life_days * 86_400.0
    spaces = make_recommender(settings, text_dim(settings)).index.layout()

    def build() -> Any:
        rows = {bytes(k): bytes(v) for k, v in table.items()}
        profiles = {k.decode(): UserProfile.from_bytes(v, half_life_s=half_life) for k, v in rows.items()}
        by_kind: dict[str, dict[str, dict[str, Any]]] = {"item": {}, "user": {}}
        for key, raw in vectors.items():
            if is_version_marker(raw):
                continue
            kind, name, id = parse_vector_key(key)
            by_kind.setdefault(kind, {}).setdefault(id, {})[name] = parse_vector(raw)["v"]
        for user, profile in profiles.items():
            text = profile.text_vector()
            if text is not None:
                by_kind["user"].setdefault(user, {})["text"] = text
        qdrant = QdrantClient(":memory:")
        for kind, named in by_kind.items():
            index = QdrantIndex(qdrant, f"{kind}s", spaces)
            index.ensure()
            ids = list(named)
            for lo in range(0, len(ids), 256):
                batch = ids[lo : lo + 256]
                index.upsert_points(
                    batch,
                    {name: [named[i].get(name) for i in batch] for name in spaces},
                    [{"encoder": ""} for _ in batch],
                )
        return store.load(), rows, profiles, by_kind, qdrant

    return build


def _topics(config: dict[str, Any]) -> list[str]:
    consumer = Consumer({**config, "group.id": "streamrec-bench"})
    try:
        return sorted(consumer.list_topics(timeout=10).topics)
    finally:
        consumer.close()


def bench_memory(
    mem: Phase, enc: Phase, workload: Workload, n: int, texts: int, say: Say, timeout: float = 900.0
) -> dict[str, Any]:
    """RSS and state of a cf, a recommender (both on `n` clicks) and an encoder worker
    (on `texts` reviews), after N and again after 2N."""
    clicks = Replayer(mem.config)
    reviews = Replayer(enc.config)
    clicks.replay(workload.catalog_events(mem.topics.items))
    clicks.flush()
    say("memory: starting a cf, a recommender and an encoder worker, one process each")
    workers = {
        "cf": mem.worker(["cf"]),
        "recommender": mem.worker(["recommender"]),
        "encoder": enc.worker(["encoder"]),
    }
    mem.wait_ready()
    enc.wait_ready()
    ready = {role: rss_mb(w.process.pid) for role, w in workers.items()}
    states: dict[str, Callable[[], Callable[[], Any]]] = {
        "cf": lambda: cf_state(mem.settings),
        "recommender": lambda: recommender_state(mem.settings),
    }
    points: list[dict[str, dict[str, float]]] = []
    rates: list[float] = []
    for half in (0, 1):
        say(f"memory: {'second' if half else 'first'} {texts} reviews and {n:,} clicks")
        # Reviews first, alone, so that the encoder's rate is not shared with the other roles.
        reviews.replay(workload.review_events(enc.topics.reviews, half * texts, texts))
        reviews.flush()
        started = time.perf_counter()
        encoded = (half + 1) * texts
        wait_until(
            partial(_encoded, workers["encoder"], encoded), timeout, "the reviews' encoding", 0.05,
            list(workers.values()),
        )  # fmt: skip
        rates.append(texts / (time.perf_counter() - started))
        clicks.replay(workload.click_events(mem.topics.clicks, half * n, n))
        clicks.flush()
        _settle(mem, mem.cf_group, mem.topics.clicks, clicks, timeout, workers)
        _settle(mem, mem.recommender_group, mem.topics.clicks, clicks, timeout, workers)
        _settle(enc, enc.encoder_group, enc.topics.reviews, reviews, timeout, workers)
        point: dict[str, dict[str, float]] = {}
        for role, worker in workers.items():
            pid = worker.process.pid
            point[role] = {
                "peak": peak_rss_mb(pid),
                "rss": rss_mb(pid),
                "state": traced_mb(states[role]()) if role in states else 0.0,
                **_entities(worker, role),
            }
        points.append(point)
    out: dict[str, Any] = {}
    for role in workers:
        at_n, at_2n = points[0][role], points[1][role]
        growth = at_2n["peak"] - at_n["peak"]
        state_growth = at_2n["state"] - at_n["state"]
        out[role] = {
            "events_n": texts if role == "encoder" else n,
            "events": "reviews" if role == "encoder" else "clicks",
            "rss_mb_ready": ready[role],
            "rss_mb_at_n": at_n["peak"],
            "rss_mb_at_2n": at_2n["peak"],
            "current_rss_mb_at_n": at_n["rss"],
            "current_rss_mb_at_2n": at_2n["rss"],
            "rss_growth_mb": growth,
            "state_mb_at_n": at_n["state"],
            "state_mb_at_2n": at_2n["state"],
            "state_growth_mb": state_growth,
            "growth_beyond_state_pct": 100.0 * (growth - state_growth) / at_n["peak"],
            **{f"{k}_at_n": at_n[k] for k in at_n if k not in ("peak", "rss", "state")},
            **{f"{k}_at_2n": at_2n[k] for k in at_2n if k not in ("peak", "rss", "state")},
        }
    # The worker's whole path on a backlog of real reviews: fetch, micro-batches, encode, produce.
    out["encoder"]["worker_texts_per_s"] = max(rates)
    mem.stop()
    enc.stop()
    return out


def _encoded(worker: WorkerProcess, texts: int) -> bool:
    return metric_total(worker, "streamrec_encoder_texts_total", kind="review") >= texts


def _settle(
    phase: Phase, group: str, topic: str, sent: Replayer, timeout: float, workers: dict[str, WorkerProcess]
) -> None:
    """Wait until `group` has committed all that was sent to `topic`: its state is durable."""
    ends = end_offsets(sent.delivered, topic)
    wait_until(
        partial(phase.caught_up, group, topic, ends), timeout, f"{group} to commit {topic}", 0.1,
        list(workers.values()),
    )  # fmt: skip


def _entities(worker: WorkerProcess, role: str) -> dict[str, float]:
    if role == "cf":
        return {
            "users": metric_total(worker, "streamrec_model_entities", role="cf", kind="users"),
            "items": metric_total(worker, "streamrec_model_entities", role="cf", kind="items"),
        }
    if role == "recommender":
        return {
            "items": metric_total(worker, "streamrec_model_entities", role="recommender", kind="items"),
            "users": metric_total(worker, "streamrec_model_entities", role="recommender", kind="users_cf"),
        }
    return {"texts": metric_total(worker, "streamrec_encoder_texts_total")}
