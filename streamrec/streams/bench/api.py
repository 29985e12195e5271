"""The HTTP API under a paced request rate, and how fast a withdrawn item leaves every list.

The pipeline (cf, encoder, recommender) runs in one worker process and the api role in another,
as a deployment that scales the API apart does. A real catalog is encoded and real clicks make
a published list for each of their users; then requests are sent on a fixed schedule (open
loop) with aiohttp's client, and each latency runs from the request's scheduled time to the last
byte of its answer, so a server that falls behind is charged for the wait. Stored lists are
asked as they are; lists computed on request are asked with an `exclude` filter, which forces the
ranking. Then the item named on most lists is deleted (a tombstone on `items`), and the figure is
the time from the tombstone to the last renewed list that no longer names it. Last, with the
pipeline stopped and `retained` more clicks on the topics, how long an API process takes from its
start to serving: restarted from its checkpoint, a new replica given another's, one given nothing
(it reads the latest snapshot on `api-snapshots`), and one with snapshots off.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from streamrec.streams.bench.cluster import _LABEL, Phase, wait_until
from streamrec.streams.bench.cpu import CpuMeter
from streamrec.streams.bench.latency import _items, percentiles
from streamrec.streams.bench.workload import Workload
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess

__all__ = ["bench_api"]

Say = Callable[[str], None]


def bench_api(
    phase: Phase,
    workload: Workload,
    say: Say,
    rate: float = 500.0,
    computed_rate: float = 100.0,
    seconds: float = 10.0,
    clicks: int = 5_000,
    withdraw_timeout_s: float = 60.0,
    retained: int = 1_000_000,
) -> dict[str, Any]:
    topics = phase.topics
    catalog = {item: workload.catalog[item] for item in _items(workload, clicks)}
    say("api: starting the workers (cf, encoder and recommender; api)")
    pipeline = phase.worker(["cf", "encoder", "recommender"])
    api = phase.worker(["api"])
    phase.wait_ready()
    say(f"api: encoding a catalog of {len(catalog):,} items")
    vectors = Collector(phase.config, topics.vectors, fetch_wait_ms=phase.settings.fetch_max_wait_ms)
    lists = Collector(phase.config, topics.recommendations, fetch_wait_ms=phase.settings.fetch_max_wait_ms)
    replayer = Replayer(phase.config)
    try:
        replayer.replay(workload.catalog_events(topics.items, catalog))
        replayer.flush()
        wait_until(
            lambda: set(catalog) <= {m["id"] for _, m in vectors.messages if m["kind"] == "item"},
            900,
            "the catalog's text vectors",
            0.2,
            [pipeline, api],
        )
        events = list(workload.click_events(topics.clicks, 0, clicks))
        users = sorted({key for _, _, key in events if key})
        say(f"api: {len(events):,} clicks from {len(users):,} users, for their published lists")
        replayer.replay(events, rate=1_000.0)
        replayer.flush()
        wait_until(
            lambda: len({m["user_id"] for _, m in lists.messages}) >= len(users),
            300,
            "a published list for every user",
            0.5,
            [pipeline, api],
        )
        url = api.api_url
        token = phase.cluster.worker_env.get("API_TOKEN")
        # The CPU a request costs the API process (the pipeline's beside it: what else it wakes).
        processes = {"api": [api.process.pid], "pipeline": [pipeline.process.pid]}
        wait_until(lambda: _stored_count(url) >= len(users), 120, "the API to hold every list", 0.5, [api])

        rng = random.Random(7)
        say(f"api: stored lists at {rate:,.0f} requests/s for {seconds:g}s")
        stored_paths = [f"/v1/users/{rng.choice(users)}/recommendations" for _ in range(int(rate * seconds))]
        before = _server_buckets(api, "stored")
        with CpuMeter(processes) as cpu:
            stored = _paced(url, stored_paths, rate, token)
        stored["cpu_ms_per_event"], stored["cores_busy"] = cpu.per_event(len(stored_paths)), cpu.cores()
        stored["server_p99_at_most_ms"] = _bucket_p99(before, _server_buckets(api, "stored"))
        items = list(catalog)
        say(f"api: lists computed on request at {computed_rate:,.0f} requests/s for {seconds:g}s")
        computed_paths = [
            f"/v1/users/{rng.choice(users)}/recommendations?exclude={rng.choice(items)}"
            for _ in range(int(computed_rate * seconds))
        ]
        before = _server_buckets(api, "computed")
        with CpuMeter(processes) as cpu:
            computed = _paced(url, computed_paths, computed_rate, token)
        computed["cpu_ms_per_event"], computed["cores_busy"] = cpu.per_event(len(computed_paths)), cpu.cores()
        computed["server_p99_at_most_ms"] = _bucket_p99(before, _server_buckets(api, "computed"))
        withdrawal = _withdraw(phase, replayer, lists, say, withdraw_timeout_s)
        replicas = _replicas(phase, workload, pipeline, api, len(events), retained, say)
    finally:
        vectors.close()
        lists.close()
    return {
        "users": len(users),
        "items": len(catalog),
        "token": token is not None,
        "stored": {**stored, "offered_requests_per_s": rate},
        "computed": {**computed, "offered_requests_per_s": computed_rate},
        "withdrawal": withdrawal,
        "replicas": replicas,
    }


def _replicas(
    phase: Phase, workload: Workload, pipeline: WorkerProcess, api: WorkerProcess, sent: int, retained: int,
    say: Say,
) -> dict[str, Any]:  # fmt: skip
    """Seconds from an API process's start until it serves (ready: every topic read to where it
    ended at the start), with `retained` more clicks on the topics: restarted from its checkpoint,
    a new replica given that checkpoint (`STREAMREC_API_SEED`, as a deployment hands a new
    replica a copy of another's), a new replica given nothing, which starts from the snapshot the
    first one published to `api-snapshots` as it stopped, and a new replica with snapshots off,
    which reads from the beginning. The pipeline is stopped first: the API's reading alone is timed."""
    for worker in (pipeline, api):
        worker.stop()
        phase.stack.workers.remove(worker)
    say(f"api: {retained:,} more clicks on the topics, for the start of a replica")
    replayer = Replayer(phase.config)
    replayer.replay(workload.click_events(phase.topics.clicks, sent, retained))
    replayer.flush()
    total = sent + retained
    out: dict[str, Any] = {"clicks_retained": total}
    seeded = {
        "DATA_DIR": str(phase.settings.data_dir / "seeded"),
        "API_SEED": str(phase.settings.state_dir("api")),
    }
    snapshot = {"DATA_DIR": str(phase.settings.data_dir / "bare")}
    new_dir = {"DATA_DIR": str(phase.settings.data_dir / "replica"), "API_SNAPSHOT_INTERVAL_S": "0"}
    # The first start reads the new clicks on from the checkpoint the requests' process left;
    # it stops with a checkpoint of all of them, which the restart and the seeded replica start from.
    starts: list[tuple[str, dict[str, str]]] = [
        ("read_on_s", {}),
        ("restart_s", {}),
        ("seeded_replica_s", seeded),
        ("snapshot_replica_s", snapshot),
        ("new_replica_s", new_dir),
    ]
    for name, env in starts:
        say(f"api: {name[:-2].replace('_', ' ')}, {total:,} clicks retained")
        started = time.monotonic()
        worker = phase.stack.start_worker(["api"], None, **phase.cluster.worker_env, **env)
        wait_until(worker.is_ready, 1_800, "the API to serve", 0.05, [worker])
        out[name] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        worker.stop()
        phase.stack.workers.remove(worker)
        if name == "read_on_s":  # its stop checkpoints every click and publishes that as a snapshot
            out["read_on_stop_s"] = round(time.monotonic() - started, 2)
            out["checkpoint_mb"] = round(
                phase.settings.state_dir("api").joinpath("checkpoint.pkl").stat().st_size / 1e6, 1
            )
    return out


def _stored_count(url: str) -> int:
    import httpx

    try:
        why = httpx.get(f"{url}/healthz", timeout=2).json()["why"]
    except (httpx.HTTPError, ValueError, KeyError):
        return 0
    # "serving N stored lists and M items"
    words = why.split()
    return int(words[1].replace(",", "")) if why.startswith("serving") else 0


def _server_buckets(api: WorkerProcess, answer: str) -> dict[float, float]:
    """The API's own histogram of list requests with `answer`: cumulative count per bucket bound."""
    out: dict[float, float] = {}
    for labels, value in api.metric("streamrec_api_request_seconds_bucket").items():
        found = dict(_LABEL.findall(labels))
        if found.get("answer") == answer and found.get("route", "").endswith("/recommendations"):
            bound = float("inf") if found["le"] == "+Inf" else float(found["le"])
            out[bound] = out.get(bound, 0.0) + value
    return out


def _bucket_p99(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The smallest bucket bound (ms) holding 99% of the requests answered between two readings:
    the server's own share of the latency, without the client and the network."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    if total <= 0:
        return None
    bound = next(b for b, n in counts.items() if n >= 0.99 * total)
    return None if bound == float("inf") else round(1000 * bound, 3)


def _paced(url: str, paths: list[str], rate: float, token: str | None = None) -> dict[str, Any]:
    """Send GET `paths` at `rate` per second on a fixed schedule, with the bearer `token` if
    given; latencies in ms from each schedule.

    The client's own garbage collector is held off while it sends: its pauses are not the server's."""
    import gc

    gc.disable()
    try:
        return asyncio.run(_send(url, paths, rate, token))
    finally:
        gc.enable()


async def _send(url: str, paths: list[str], rate: float, token: str | None) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=256)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:

        async def one(path: str, due: float) -> None:
            try:
                async with session.get(path) as response:
                    await response.read()
                    if response.status != 200:
                        errors[str(response.status)] += 1
                        return
                    answers[response.headers.get("X-Streamrec-List", "?")] += 1
            except aiohttp.ClientError as exc:
                errors[type(exc).__name__] += 1
                return
            latencies.append(1000.0 * (time.perf_counter() - due))

        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        tasks = []
        for n, path in enumerate(paths):
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(loop.create_task(one(path, due)))
        await asyncio.gather(*tasks)
        took = time.perf_counter() - started
    return {
        **percentiles(latencies),
        "requests": len(paths),
        "answered_per_s": round(len(latencies) / took, 1),
        "errors": dict(errors),
        "answers": dict(answers),
    }


def _withdraw(phase: Phase, replayer: Replayer, lists: Collector, say: Say, timeout: float) -> dict[str, Any]:
    """Delete the item on most lists; seconds until every list that named it was renewed without it."""
    latest: dict[str, list[str]] = {}
    for _, message in list(lists.messages):
        latest[message["user_id"]] = [i["item_id"] for i in message["items"]]
    counts = Counter(item for items in latest.values() for item in items)
    if not counts:
        raise RuntimeError("no published list names any item: nothing to withdraw")
    item, named = counts.most_common(1)[0]
    holders = {user for user, items in latest.items() if item in items}
    say(f"api: deleting item {item}, on {named:,} users' latest lists")
    seen = len(lists.messages)
    deleted = time.time()
    replayer.send(phase.topics.items, None, key=item)
    replayer.flush()
    renewed: dict[str, float] = {}

    def done() -> bool:
        for arrived, message in lists.messages[seen:]:
            user = message["user_id"]
            if user in holders and all(i["item_id"] != item for i in message["items"]):
                renewed.setdefault(user, arrived)
        return len(renewed) >= len(holders)

    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    still = len(holders) - len(renewed)
    return {
        "item": item,
        "lists_naming_it": len(holders),
        "lists_renewed": len(renewed),
        # A list still naming it after the wait counts as the whole wait (the target then fails).
        "seconds_to_last_list": round(max(renewed.values()) - deleted, 3)
        if renewed and not still
        else timeout,
        "p50_seconds": round(sorted(renewed.values())[len(renewed) // 2] - deleted, 3) if renewed else None,
        "lists_still_naming_it": still,
    }
