"""Event-to-recommendation latency at fixed offered loads, and the most load the worker sustains.

The recommender, cf and encoder run in a worker process each (as a deployment that runs roles
apart does), over a real catalog whose text vectors are published before the clock starts. Clicks
are produced at a fixed pace; a consumer in this process stamps each recommendation as it arrives.
A recommendation's latency is its arrival time minus its trigger's Kafka timestamp, and it counts
for a load only when its trigger (topic, partition, offset) is one of the events produced at that
load. Events of one user coalesce into one recommendation, so a load is sustained when the last
event of every user is answered within `grace_s` of the end of the load, the producer kept the
pace, and p99 is within `slo_ms` of one broker hop's p99. Beside every load, the CPU time each
role's processes, the broker and this process spent per event, and the cores they kept busy
(`CpuMeter`); and, before the loads, what they cost with no events at all. Each load starts once
the recommender has committed everything before it, so no load is charged for another's backlog.

The broker is part of every hop: `broker_hop` measures one produce-to-consume hop with the
workers' fetch wait, in the same run, as the floor under these figures.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in the stubs' exports

from streamrec.streams.bench.cluster import Phase, metric_total, wait_until
from streamrec.streams.bench.cpu import CpuMeter
from streamrec.streams.bench.profile import Profile
from streamrec.streams.bench.workload import Event, Workload
from streamrec.streams.replay import Collector, Replayer

__all__ = ["Arrivals", "bench_latency", "broker_hop", "percentiles"]

Say = Callable[[str], None]
#: This process's consumers ask for little waiting, so that measuring adds little latency.
PROBE_FETCH_WAIT_MS = 10
#: Clicks per second and seconds of the unmeasured load that warms the worker up.
WARM_UP = (100.0, 2.0)
#: Seconds the processes' CPU is measured with no events: what they cost before any load.
IDLE_S = 5.0
#: Seconds a load waits at most for the recommender to work off what an earlier load left.
SETTLE_S = 180.0
#: A process per role, as a deployment that runs them apart does: the CPU each spends is its own.
PROCESSES = (("cf",), ("encoder",), ("recommender",))


def percentiles(values_ms: Iterable[float]) -> dict[str, float | int | None]:
    """p50, p95, p99 and the count of a sample (None for an empty one).

    >>> percentiles(range(1, 101))["p99"], percentiles([])["p50"]
    (99.01, None)
    """
    values = np.asarray(list(values_ms), dtype=np.float64)
    if len(values) == 0:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "n": int(len(values))}


class Arrivals:
    """Reads recommendations in a thread, stamping each with its arrival time."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self.rows: list[tuple[float, str, str, int, int, float]] = []
        self._stop = threading.Event()
        self._consumer = Consumer({
            **config, "group.id": "streamrec-bench", "enable.auto.commit": False,
            "fetch.wait.max.ms": PROBE_FETCH_WAIT_MS,
        })  # fmt: skip
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread = threading.Thread(target=self._run, name="bench-arrivals", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rows, poll = self.rows, self._consumer.poll
        while not self._stop.is_set():
            msg = poll(0.05)
            raw = msg.value() if msg is not None and not msg.error() else None
            if msg is None or raw is None:
                continue
            arrived = time.time()
            value = orjson.loads(raw)
            trigger = value["trigger"]
            rows.append(
                (
                    arrived,
                    value["user_id"],
                    trigger["topic"],
                    trigger["partition"],
                    trigger["offset"],
                    trigger["ts"],
                )
            )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def broker_hop(
    config: dict[str, Any], topic: str, rate: float, seconds: float, fetch_wait_ms: int
) -> dict[str, Any]:
    """Latency of one produce-to-consume hop through the broker, with a given fetch wait."""
    admin = AdminClient(config)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    consumer = Consumer({**config, "group.id": "streamrec-bench", "fetch.wait.max.ms": fetch_wait_ms})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    consumer.poll(0.5)
    producer = Producer({**config, "linger.ms": 0})
    seen: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                seen.append(1000.0 * (time.time() - msg.timestamp()[1] / 1000.0))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    n = int(rate * seconds)
    started = time.monotonic()
    for i in range(n):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            producer.poll(delay)
        producer.produce(topic, b"x")
    producer.flush(10)
    wait_until(lambda: len(seen) >= n, fetch_wait_ms / 1000 + 10, "the broker-hop probe")
    stop.set()
    thread.join(5)
    consumer.close()
    return {"fetch_wait_ms": fetch_wait_ms, "offered_per_s": rate, **percentiles(seen)}


def _paced(replayer: Replayer, events: Iterable[Event], rate: float) -> tuple[int, float]:
    """Send `events` at `rate` per second; returns the count and the seconds it took.

    Sleeps until each event is due rather than polling the producer for the delay, which
    returns early whenever a delivery report arrives and so would send ahead of the pace.
    """
    started = time.monotonic()
    n = 0
    for topic, value, key in events:
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        replayer.send(topic, value, key)
        n += 1
    return n, time.monotonic() - started


def _run_load(
    replayer: Replayer,
    arrivals: Arrivals,
    events: Iterator[Event],
    rate: float,
    slo_ms: float,
    grace_s: float,
) -> dict[str, Any]:
    """One paced load through `replayer`, which lives through every load as a shop's producer
    does (a new one holds its first events until the broker gives it an id: 0.5 s on tansu)."""
    replayer.flush()
    first = len(replayer.delivered)
    n, produced_s = _paced(replayer, events, rate)
    replayer.flush()
    ended = time.time()
    delivered = replayer.delivered[first:]
    triggers = {(d.topic, d.partition, d.offset) for d in delivered}
    last: dict[tuple[str | None, str, int], int] = {}
    for d in delivered:
        key = (d.key, d.topic, d.partition)
        last[key] = max(last.get(key, -1), d.offset)
    answered: dict[tuple[str | None, str, int], int] = {}
    scanned = 0
    drain_s: float | None = None
    deadline = time.monotonic() + grace_s
    while True:
        rows = arrivals.rows
        for _, user, topic, partition, offset, _ts in rows[scanned:]:
            key = (user, topic, partition)
            if offset > answered.get(key, -1):
                answered[key] = offset
        scanned = len(rows)
        missing = sum(1 for key, offset in last.items() if answered.get(key, -1) < offset)
        if missing == 0:
            newest = max((r[0] for r in rows if (r[2], r[3], r[4]) in triggers), default=ended)
            drain_s = max(0.0, newest - ended)
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    latencies = [1000.0 * (r[0] - r[5]) for r in arrivals.rows if (r[2], r[3], r[4]) in triggers]
    stats = percentiles(latencies)
    achieved = n / (produced_s + 1.0 / rate)  # the last event's slot lasts 1/rate too
    sustained = (
        drain_s is not None
        and stats["p99"] is not None
        and float(stats["p99"]) <= slo_ms
        and achieved >= 0.9 * rate
    )
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": achieved,
        "events": n,
        "recommendations": stats.pop("n"),
        **stats,
        "users_unanswered": missing,
        "drain_s": drain_s,
        "sustained": sustained,
    }


def bench_latency(
    phase: Phase,
    workload: Workload,
    say: Say,
    loads: tuple[float, ...] = (200.0, 1000.0),
    seconds: float = 15.0,
    review_rate: float = 20.0,
    slo_ms: float = 100.0,
    review_slo_ms: float = 1000.0,
    curve: tuple[float, ...] = (200.0, 500.0, 1000.0, 1500.0, 2000.0),
    curve_seconds: float = 8.0,
    grace_s: float = 10.0,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    topics = phase.topics
    # Every item a click of this run can name must be in the catalog with its text vector:
    # a click on an item the recommender has not indexed yet waits for the index to catch up.
    clicks_needed = int(2 * WARM_UP[0] * WARM_UP[1] + sum(loads) * seconds + 2 * sum(curve) * curve_seconds)
    reviews_needed = int(review_rate * seconds) + 1
    catalog = {item: workload.catalog[item] for item in _items(workload, clicks_needed)}
    catalog.update(workload.review_catalog(reviews_needed))

    say(f"latency: starting the workers ({'; '.join(','.join(roles) for roles in PROCESSES)})")
    cf, encoder, worker = (phase.worker(roles) for roles in PROCESSES)
    recommenders = [worker]
    phase.wait_ready()
    say(f"latency: encoding a catalog of {len(catalog):,} items")
    vectors = Collector(phase.config, topics.vectors, fetch_wait_ms=phase.settings.fetch_max_wait_ms)
    replayer = Replayer(phase.config)
    replayer.replay(workload.catalog_events(topics.items, catalog))
    replayer.flush()
    wait_until(
        lambda: (
            set(catalog)
            <= {m["id"] for _, m in vectors.messages if m["kind"] == "item" and m["name"] == "text"}
        ),
        900,
        "the catalog's text vectors",
        0.2,
        [cf, encoder, worker],
    )
    vectors.close()
    say("latency: one broker hop with the workers' fetch wait")
    hop = broker_hop(
        phase.config,
        phase.settings.topic("bench-hop"),
        200.0,
        min(5.0, seconds),
        phase.settings.fetch_max_wait_ms,
    )
    # A load is sustained within `slo_ms` of what the broker alone costs one hop: on Apache
    # Kafka that is about the bound itself; on a broker that holds fetches it is what can be had.
    bound_ms = slo_ms + float(hop["p99"] or 0.0)

    arrivals = Arrivals(phase.config, topics.recommendations)
    position = 0  # each load replays the next clicks of the stream: no event is sent twice
    runs: list[dict[str, Any]] = []

    def clicks_at(rate: float, secs: float, record: bool = True) -> dict[str, Any]:
        nonlocal position
        n = int(rate * secs)
        start, position = position, position + n
        if record:
            say(f"latency: clicks at {rate:,.0f}/s for {secs:g}s")
        events = workload.click_events(topics.clicks, start, n)
        backlog = drained()
        with (
            Profile(worker.process.pid, profile_dir if record else None, f"latency-{rate:.0f}") as profile,
            CpuMeter(processes()) as cpu,
        ):
            run = _run_load(replayer, arrivals, events, rate, bound_ms, grace_s)
        run["cpu_ms_per_event"], run["cores_busy"] = cpu.per_event(run["events"]), cpu.cores()
        run.update(backlog)
        if record:
            run["profile"] = profile.summary
            runs.append(run)
        time.sleep(1.0)  # let the worker settle between loads
        return run

    group = phase.recommender_group

    def drained() -> dict[str, Any]:
        """Wait until the recommender has committed every click and review before a load: each
        load starts from an empty queue, not from what an earlier one left behind."""
        started = time.monotonic()
        empty = phase.settle(group, [topics.clicks, topics.reviews_encoded], SETTLE_S)
        return {"waited_for_backlog_s": time.monotonic() - started, "started_without_backlog": empty}

    def processes() -> dict[str, list[int]]:
        broker = phase.cluster.broker.pid if phase.cluster.broker is not None else None
        return {
            "recommender": [w.process.pid for w in recommenders],
            "cf": [cf.process.pid],
            "encoder": [encoder.process.pid],
            "broker": [broker] if broker is not None else [],
            "bench": [os.getpid()],
        }

    curves: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        clicks_at(*WARM_UP, record=False)  # first calls into numpy, BLAS, the producer: not measured
        say(f"latency: the processes' CPU with no events, {IDLE_S:g}s")
        with CpuMeter(processes()) as idle:
            time.sleep(IDLE_S)
        for rate in loads:
            clicks_at(rate, seconds)
        # The load curve: where one recommender process ends, and what a second one buys.
        for rate in curve:
            done = next((r for r in runs if r["offered_events_per_s"] == rate), None)
            curves[1].append(done if done is not None else clicks_at(rate, curve_seconds))
        # Reviews next, still with one process: a backlog of text for the encoder must not spill
        # into the click loads.
        say(f"latency: reviews at {review_rate:g}/s for {seconds:g}s")
        reviews = workload.review_events(topics.reviews, 0, reviews_needed)
        backlog = drained()
        with (
            Profile(worker.process.pid, profile_dir, "latency-reviews") as profile,
            Profile(encoder.process.pid, profile_dir, "latency-reviews-encoder") as encoder_profile,
            CpuMeter(processes()) as cpu,
        ):
            review_run = _run_load(
                replayer, arrivals, reviews, review_rate, review_slo_ms, max(grace_s, 60.0)
            )
        review_run.update(backlog)
        review_run["profile"] = profile.summary
        review_run["encoder_profile"] = encoder_profile.summary
        review_run["cpu_ms_per_event"] = cpu.per_event(review_run["events"])
        review_run["cores_busy"] = cpu.cores()
        say("latency: a second recommender process")
        # Its own state directory, as each worker process needs: its checkpoint and Qdrant's
        # local storage are its own (one shared with the first would be overwritten, and locked).
        own = {**phase.cluster.worker_env, "DATA_DIR": str(phase.settings.data_dir / "second")}
        second = phase.stack.start_worker(["recommender"], None, **own)
        phase.stack.wait_ready(timeout=300, workers=[second])
        recommenders.append(second)
        clicks_at(*WARM_UP, record=False)  # the group's partitions move to it meanwhile
        for rate in curve:
            say(f"latency: two recommender processes, clicks at {rate:,.0f}/s")
            curves[2].append(clicks_at(rate, curve_seconds, record=False))
    finally:
        arrivals.close()
    recommendations = metric_total(worker, "streamrec_recommendations_total")
    read = metric_total(encoder, "streamrec_encoder_texts_total", kind="review")
    sequences = metric_total(encoder, "streamrec_encoder_sequences_total", kind="review")
    review_run["encoder_sequences_per_review"] = sequences / read if read else None
    phase.settle(group, [topics.clicks, topics.reviews_encoded], 30.0)
    phase.stop()
    target = max(loads)
    main = next(r for r in runs if r["offered_events_per_s"] == target)
    one = [r for r in runs if r["sustained"]]
    return {
        "offered_events_per_s": target,
        "p50": main["p50"],
        "p95": main["p95"],
        "p99": main["p99"],
        "slo_ms": slo_ms,
        "sustained_bound_ms": bound_ms,
        "max_sustained_events_per_s": max((r["offered_events_per_s"] for r in one), default=0.0),
        "max_sustained_two_processes_per_s": max(
            (r["offered_events_per_s"] for r in curves[2] if r["sustained"]), default=0.0
        ),
        "loads": runs,
        "curve": {"one_process": curves[1], "two_processes": curves[2]},
        "reviews": {**review_run, "slo_ms": review_slo_ms},
        "broker_hop": hop,
        "idle_cores": idle.cores(),
        "worker_recommendations": recommendations,
        "catalog_items": len(catalog),
    }


def _items(workload: Workload, n: int) -> list[str]:
    """Items the first `n` clicks refer to (every later pass repeats the same items)."""
    seen: dict[str, None] = {}
    for _, item, _ in workload.clicks[: min(n, len(workload.clicks))]:
        seen.setdefault(item, None)
    return list(seen)
