"""A worker process: one faust app running one or more roles, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
import tracemalloc
from collections.abc import Sequence
from typing import Any

import faust
from mode import Service
from threadpoolctl import threadpool_limits

from streamrec.streams.context import Context
from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.topics import ensure_topics
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics, serve_metrics

__all__ = ["PIPELINE_ROLES", "ROLES", "create_app", "faust_group", "run_worker", "text_dim"]

log = logging.getLogger(__name__)

ROLES = ("api", "cf", "encoder", "recommender")
#: The roles that turn events into recommendations (the API answers from what they publish).
PIPELINE_ROLES = ("cf", "encoder", "recommender")
#: A shutdown that has not finished after this long is forced, so a stuck client never blocks a deploy.
SHUTDOWN_GRACE_S = 30.0


def text_dim(settings: Settings) -> int:
    """The encoder's output size, read from its config without loading the weights."""
    from streamrec.model.text.weights import model_dim

    return model_dim(settings.encoder.model)


def faust_group(settings: Settings, roles: Sequence[str]) -> str:
    """The id of the faust app running `roles` (it names the app; no role reads through it)."""
    grouped = sorted(r for r in roles if r != "api") or ["api"]
    return settings.topic("streamrec-" + "-".join(grouped))


def create_app(settings: Settings, roles: Sequence[str], clients: KafkaClients) -> faust.App:
    """The faust app that hosts the roles: their services, timers and shutdown.

    Every role reads Kafka through clients of its own (`streams/kafka/consumer.py` for what it
    reads in a consumer group, `streams/kafka/feed.py` for what it follows whole), so the app
    starts no Kafka consumer: a faust stream costs about 80 microseconds an event before any work,
    and it could skip a record after a restart and commit past it.
    """
    app = faust.App(
        faust_group(settings, roles),
        broker=[f"kafka://{server}" for server in clients.servers.split(",")],
        broker_credentials=clients.faust_credentials(),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        web_enabled=False,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
    )
    app.boot_strategy = app.BootStrategy(app, enable_kafka_consumer=False)
    return app


def _awaiting(coro: Any) -> list[str]:
    """Where a suspended coroutine waits: its chain of awaits, outermost first."""
    chain = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


def _log_tasks() -> None:
    tasks = asyncio.all_tasks()
    lines = [f"{len(tasks)} tasks"]
    for task in tasks:
        lines.append(f"{task.get_name()}:")
        lines.extend(f"    {where}" for where in _awaiting(task.get_coro()))
    if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1 (or more frames) in the environment
        top = tracemalloc.take_snapshot().statistics("lineno")[:25]
        traced = tracemalloc.get_traced_memory()[0] / 2**20
        lines.append(f"largest allocation sites, {traced:.1f} MiB traced:")
        lines.extend(f"    {stat}" for stat in top)
    log.warning("\n".join(lines))


class _Lifecycle(Service):
    """Starts and stops the roles' own resources, and reports readiness."""

    def __init__(self, ctx: Context, parts: list[Any], **kwargs: Any) -> None:
        self.ctx = ctx
        self.parts = parts
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        # `kill -USR1 <pid>` logs where every task of the event loop is waiting.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _log_tasks)
        for part in self.parts:
            if hasattr(part, "open"):
                await part.open()

    async def on_stop(self) -> None:
        for part in reversed(self.parts):
            if hasattr(part, "close"):
                await part.close()
        await asyncio.get_running_loop().run_in_executor(None, self.ctx.output.close)

    @Service.task
    async def _report_ready(self) -> None:
        announced = False
        while not self.should_stop:
            ready = all(check() for check in self.ctx.ready_checks.values())
            for role in self.ctx.roles:
                self.ctx.metrics.ready.labels(role).set(1 if ready else 0)
            if ready and not announced:
                log.info("worker ready: roles %s", ",".join(self.ctx.roles))
                announced = True
            elif not ready:
                announced = False
            await asyncio.sleep(0.2)


def run_worker(settings: Settings, roles: Sequence[str], bootstrap: str) -> None:
    """Run the roles until SIGTERM or SIGINT; returns after a clean shutdown."""
    roles = tuple(sorted(set(roles)))
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"roles must be among {', '.join(ROLES)}, got {', '.join(sorted(unknown))}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # For the life of the process (the encoder's torch and ONNX Runtime keep their own threads).
    threadpool_limits(settings.blas_threads, "blas")
    metrics = Metrics.create()
    port = serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
    log.info("metrics: http://%s:%d/metrics", settings.metrics_host, port)
    log.info("settings (secrets masked): %s", settings.masked())

    # Idempotent, and it waits for a Kafka that is still starting (e.g. in docker-compose).
    ensure_topics(settings, bootstrap, timeout=120)
    clients = KafkaClients.create(settings, bootstrap)
    app = create_app(settings, roles, clients)
    ctx = Context.create(settings, clients, roles, metrics)
    parts: list[Any] = []
    if "cf" in roles:
        from streamrec.streams.roles.cf.role import CFRole

        parts.append(CFRole(ctx))
    if "encoder" in roles:
        from streamrec.streams.roles.encoder.role import EncoderRole

        parts.append(EncoderRole(ctx))
    if "recommender" in roles:
        from streamrec.streams.roles.recommender.role import RecommenderRole

        parts.append(RecommenderRole(ctx, text_dim(settings)))
    if "api" in roles:
        from streamrec.streams.roles.api.role import ApiRole

        parts.append(ApiRole(ctx, text_dim(settings)))
    for part in parts:
        part.install(app)
    lifecycle = _Lifecycle(ctx, parts)

    app.service(lifecycle)  # type: ignore[arg-type]  # faust's stubs take classes; instances work
    # The worker holds millions of long-lived objects (profiles, counts, vectors): full
    # collections of them stalled event handling for hundreds of milliseconds. Collect the
    # young generation as usual, the old one rarely, and leave what exists at start alone.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)
    worker = _Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


class _Worker(faust.Worker):
    """faust's worker, with a deadline on graceful shutdown after SIGTERM or SIGINT."""

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            timer = threading.Timer(SHUTDOWN_GRACE_S, _expire)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)


def _expire() -> None:
    log.error("shutdown did not finish within %.0fs: exiting", SHUTDOWN_GRACE_S)
    os._exit(1)
