"""The whole benchmark: every measurement in one run, each beside the limit it is held to.

Measurements that need no worker (encoder, Qdrant) run first, on a quiet machine; then the
CF pipeline, memory per role and latency, each with workers of its own on one broker. A
measurement that fails is reported with its error and the others still run.
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamrec.streams.bench.workload import Workload
from streamrec.streams.settings import Settings

if TYPE_CHECKING:
    from streamrec.streams.bench.cluster import Cluster

__all__ = ["QUICK", "SECTIONS", "BenchConfig", "run_bench"]

SECTIONS = ("encoder", "qdrant", "state", "cf", "memory", "latency", "api")
Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of every measurement; `quick()` shrinks them to seconds for tests."""

    events: int = 100_000
    texts: int = 192
    device: str = "auto"
    #: Encoder weights (a local directory); None: the bundled all-MiniLM-L6-v2.
    model: str | None = None
    #: Encoder dtype of the workers and of an extra encoder measurement (auto: the default).
    dtype: str = "auto"
    max_length: int = 256
    encoder_repeats: int = 2
    memory_events: int = 20_000
    memory_texts: int = 128
    qdrant_sizes: tuple[int, ...] = (10_000, 100_000)
    qdrant_queries: int = 100
    qdrant_budget_s: float = 4.0
    loads: tuple[float, ...] = (200.0, 1000.0)
    load_seconds: float = 15.0
    review_rate: float = 20.0
    #: Clicks per second of the load curve (one recommender process, then two), seconds each.
    curve: tuple[float, ...] = (200.0, 500.0, 1000.0, 1500.0, 2000.0)
    curve_seconds: float = 8.0
    grace_s: float = 10.0
    slo_ms: float = 100.0
    review_slo_ms: float = 1000.0
    sections: tuple[str, ...] = SECTIONS
    profile_dir: Path | None = None
    #: Settings of the worker processes on top of the environment (`STREAMREC_` left out).
    worker_env: dict[str, str] = field(default_factory=dict)
    #: Keep only the clicks on this many items (the most clicked): a catalog quick to encode.
    catalog_items: int | None = None
    #: Start every worker before the first measurement: start-ups overlap (and disturb the
    #: measurements, so only for tests).
    prestart: bool = False
    #: Requests per second of stored lists, and of lists computed on request; seconds of each.
    api_rate: float = 500.0
    api_computed_rate: float = 100.0
    api_seconds: float = 10.0
    api_clicks: int = 5_000
    #: Clicks on the topics when an API process's start is timed (restarted, and new replicas).
    api_retained: int = 1_000_000
    #: Clicks applied in one process before ranking and checkpointing are timed, and users ranked.
    state_sizes: tuple[int, ...] = (2_000, 120_000)
    state_users: int = 512

    def quick(self) -> BenchConfig:
        return replace(self, **QUICK)


#: Seconds, not minutes: every code path, no figure worth quoting. Checkpoints every second
#: so that "durable" comes sooner.
QUICK: dict[str, Any] = {
    "events": 3_000,
    "texts": 16,
    "encoder_repeats": 1,
    "memory_events": 1_000,
    "memory_texts": 8,
    "qdrant_sizes": (1_000, 5_000),
    "qdrant_queries": 20,
    "qdrant_budget_s": 1.0,
    "loads": (50.0, 200.0),
    "load_seconds": 3.0,
    "review_rate": 4.0,
    "curve": (50.0, 200.0),
    "curve_seconds": 2.0,
    "grace_s": 8.0,
    "catalog_items": 150,
    "prestart": True,
    "max_length": 128,
    "api_rate": 100.0,
    "api_computed_rate": 20.0,
    "api_seconds": 2.0,
    "api_clicks": 500,
    "api_retained": 1_000,
    "state_sizes": (500, 2_000),
    "state_users": 64,
    "worker_env": {"CF__CHECKPOINT_INTERVAL_S": "1.0", "RECOMMENDER__CHECKPOINT_INTERVAL_S": "1.0"},
}


def run_bench(
    config: BenchConfig, settings: Settings, workload: Workload, data_dir: Path, say: Say
) -> dict[str, Any]:
    """Run the selected measurements; returns the report (JSON-ready)."""
    started = time.monotonic()
    env = {
        "ENCODER__DEVICE": config.device,
        "ENCODER__MAX_LENGTH": str(config.max_length),
        "ENCODER__DTYPE": config.dtype,
        **({"ENCODER__MODEL": config.model} if config.model else {}),
        # The API asks for a token, as a deployment's should; the bench's client sends it.
        "API_TOKEN": secrets.token_urlsafe(16),
        **config.worker_env,
    }
    report: dict[str, Any] = {
        "machine": _machine(),
        "config": _jsonable(asdict(config)),
        "data": workload.source,
    }
    # Joins take about half the session timeout on some brokers: the lowest Apache Kafka
    # allows keeps worker start-ups short; steady-state figures do not depend on it.
    settings = _with_env(settings, env).model_copy(update={"kafka_session_timeout_s": 6.0})
    if config.catalog_items is not None:
        workload = workload.narrowed(config.catalog_items)
    timings: dict[str, float] = {}

    def guard(name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return _guard(measure, say, timings, name)

    on_broker = [name for name in ("cf", "memory", "latency", "api") if name in config.sections]
    cluster = None
    if on_broker:
        # Kafka's clients load only when a measurement needs the broker: the encoder alone
        # runs wherever torch does (a GPU machine, say).
        from streamrec.streams.bench.cluster import Cluster

        cluster = Cluster(settings, data_dir, env)
    try:
        if cluster is not None and config.prestart:
            _prestart(cluster, config, say)
        if "encoder" in config.sections:
            report["encoder"] = guard("encoder", lambda: _encoder(config, workload, say))
        if "qdrant" in config.sections:
            report["qdrant"] = guard("qdrant", lambda: _qdrant(config, settings, say))
        if "state" in config.sections:
            report["state"] = guard("state", lambda: _state(config, settings, workload, say))
        if cluster is not None:
            if not config.prestart:
                say(
                    f"using Kafka at {settings.kafka_bootstrap}"
                    if settings.kafka_bootstrap
                    else "starting the broker"
                )
                cluster.start()
            _on_broker(cluster, config, workload, report, guard, say)
    finally:
        if cluster is not None:
            cluster.stop()
    report["machine"]["load_average_end"] = _load_average()
    report["seconds"] = time.monotonic() - started
    report["seconds_by_section"] = timings
    return report


def _on_broker(
    cluster: Cluster,
    config: BenchConfig,
    workload: Workload,
    report: dict[str, Any],
    guard: Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]],
    say: Say,
) -> None:
    if "cf" in config.sections:
        from streamrec.streams.bench.pipeline import bench_cf

        report["cf"] = guard(
            "cf", lambda: bench_cf(cluster.phase("cf"), workload, config.events, say, config.profile_dir)
        )
    if "memory" in config.sections:
        from streamrec.streams.bench.memory import bench_memory

        report["memory"] = guard(
            "memory",
            lambda: bench_memory(
                cluster.phase("mem"), cluster.phase("menc"), workload, config.memory_events,
                config.memory_texts, say,
            ),
        )  # fmt: skip
        worker_rate = report["memory"].get("encoder", {}).get("worker_texts_per_s")
        if worker_rate is not None and "encoder" in report and "error" not in report["encoder"]:
            report["encoder"]["worker_texts_per_s"] = worker_rate
    if "latency" in config.sections:
        from streamrec.streams.bench.latency import bench_latency

        report["latency_ms"] = guard(
            "latency",
            lambda: bench_latency(
                cluster.phase("lat"), workload, say, loads=config.loads, seconds=config.load_seconds,
                review_rate=config.review_rate, slo_ms=config.slo_ms, review_slo_ms=config.review_slo_ms,
                curve=config.curve, curve_seconds=config.curve_seconds,
                grace_s=config.grace_s, profile_dir=config.profile_dir,
            ),
        )  # fmt: skip

    if "api" in config.sections:
        from streamrec.streams.bench.api import bench_api

        report["api"] = guard(
            "api",
            lambda: bench_api(
                cluster.phase("api"), workload, say, rate=config.api_rate,
                computed_rate=config.api_computed_rate, seconds=config.api_seconds, clicks=config.api_clicks,
                retained=config.api_retained,
            ),
        )  # fmt: skip


def _prestart(cluster: Cluster, config: BenchConfig, say: Say) -> None:
    """Start every measurement's workers at once, so that their start-ups overlap."""
    say("starting the broker and every worker (prestart)")
    cluster.start()
    if "cf" in config.sections:
        cluster.phase("cf").worker(["cf"])
    if "memory" in config.sections:
        cluster.phase("mem").worker(["cf"])
        cluster.phase("mem").worker(["recommender"])
        cluster.phase("menc").worker(["encoder"])
    if "latency" in config.sections:
        from streamrec.streams.bench.latency import PROCESSES

        for roles in PROCESSES:  # the processes the section runs, no more
            cluster.phase("lat").worker(roles)
    if "api" in config.sections:
        cluster.phase("api").worker(["cf", "encoder", "recommender"])
        cluster.phase("api").worker(["api"])


def _encoder(config: BenchConfig, workload: Workload, say: Say) -> dict[str, Any]:
    from streamrec.streams.bench.encoding import measure_encoder

    texts = workload.texts(config.texts)
    return measure_encoder(
        texts, config.device, config.model, config.max_length, config.encoder_repeats, config.dtype, say
    )


def _state(config: BenchConfig, settings: Settings, workload: Workload, say: Say) -> dict[str, Any]:
    from streamrec.streams.bench.state import bench_state

    return bench_state(workload, settings, say, sizes=config.state_sizes, users=config.state_users)


def _qdrant(config: BenchConfig, settings: Settings, say: Say) -> dict[str, Any]:
    from streamrec.streams.bench.qdrant import bench_qdrant

    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key is not None else None
    return bench_qdrant(
        config.qdrant_sizes,
        say,
        url=settings.qdrant_url,
        api_key=key,
        queries=config.qdrant_queries,
        budget_s=config.qdrant_budget_s,
    )


def _guard(
    measure: Callable[[], dict[str, Any]], say: Say, timings: dict[str, float], name: str
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
        say(f"[red]{name} failed: {type(exc).__name__}: {exc}[/red]")
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        timings[name] = round(time.monotonic() - started, 1)


def _with_env(settings: Settings, env: dict[str, str]) -> Settings:
    """`settings` as the workers will see them with `env` on top (for the figures' labels)."""
    groups: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        group, _, key = name.lower().partition("__")
        if key:
            groups.setdefault(group, {})[key] = value
    update = {}
    for group, values in groups.items():
        current = getattr(settings, group)
        update[group] = current.model_validate({**current.model_dump(), **values})
    return settings.model_copy(update=update)


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _machine() -> dict[str, Any]:
    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return {
        "cpus": cpus,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": _load_average(),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
