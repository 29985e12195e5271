"""The local stack: a broker (embedded unless one is given), topics, and worker processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from streamrec.streams.errors import WorkerError
from streamrec.streams.kafka.broker import EmbeddedBroker, free_port
from streamrec.streams.kafka.topics import ensure_topics
from streamrec.streams.settings import Settings
from streamrec.streams.worker import PIPELINE_ROLES

__all__ = ["Stack", "WorkerProcess", "settings_env"]

log = logging.getLogger(__name__)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that reproduces `settings` in a child process."""
    env = dict(os.environ)
    values = {
        "DATA_DIR": str(settings.data_dir),
        "TOPIC_PREFIX": settings.topic_prefix,
        "PARTITIONS": str(settings.partitions),
        "METRICS_HOST": settings.metrics_host,
        "API_HOST": settings.api_host,
        "LOG_LEVEL": settings.log_level,
        "KAFKA_SESSION_TIMEOUT_S": str(settings.kafka_session_timeout_s),
        "DEADLETTER_RETENTION_DAYS": str(settings.deadletter_retention_days),
        # Resolved here: a worker given the embedded broker's address takes it for an external one.
        "KAFKA_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
        "QDRANT_IN_MEMORY": "1" if settings.qdrant_in_memory else "0",
    }
    if settings.kafka_bootstrap:
        values["KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.qdrant_url:
        values["QDRANT_URL"] = settings.qdrant_url
    if settings.rules is not None:
        values["RULES"] = str(settings.rules.resolve())
    if settings.qdrant_api_key is not None:
        values["QDRANT_API_KEY"] = settings.qdrant_api_key.get_secret_value()
    values.update(extra)
    env.update({f"STREAMREC_{k}": v for k, v in values.items()})
    return env


@dataclass
class WorkerProcess:
    """A `streamrec worker` child process and its metrics endpoint."""

    roles: tuple[str, ...]
    metrics_port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    log_file: IO[bytes] | None = field(default=None, repr=False)

    #: Where its API answers (roles with `api` only).
    api_port: int = 0
    api_host: str = "127.0.0.1"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def api_url(self) -> str:
        if not self.api_port:
            raise WorkerError(f"worker {','.join(self.roles)} runs no API")
        return f"http://{self.api_host}:{self.api_port}"

    def metric(self, name: str) -> dict[str, float]:
        """Current values of one metric, by label set (as written in the exposition)."""
        with urllib.request.urlopen(self.metrics_url, timeout=2) as response:  # noqa: S310 - local URL
            text = response.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                out[series[len(name) :]] = float(value)
        return out

    def is_ready(self) -> bool:
        try:
            ready = self.metric("streamrec_worker_ready")
        except OSError:
            return False
        return bool(ready) and all(v == 1.0 for v in ready.values()) and len(ready) == len(self.roles)

    def stop(self, timeout: float = 40.0, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("worker %s did not stop within %.0fs: killing it", ",".join(self.roles), timeout)
                self.process.kill()
                self.process.wait()
        if self.log_file is not None:
            self.log_file.close()
        return int(self.process.returncode)


class Stack:
    """Starts the broker (unless `kafka_bootstrap` is set), creates topics, runs workers."""

    def __init__(self, settings: Settings, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.broker: EmbeddedBroker | None = None
        self.workers: list[WorkerProcess] = []

    @property
    def bootstrap(self) -> str:
        if self.settings.kafka_bootstrap:
            return self.settings.kafka_bootstrap
        if self.broker is None:
            raise WorkerError("the stack is not started")
        return self.broker.bootstrap

    def start_broker(self) -> str:
        if not self.settings.kafka_bootstrap:
            log_path = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                log_path = self.log_dir / "broker.log"
            self.broker = EmbeddedBroker(port=self.settings.port, log_path=log_path).start()
        ensure_topics(self.settings, self.bootstrap)
        return self.bootstrap

    def start_worker(
        self, roles: Sequence[str] = PIPELINE_ROLES, metrics_port: int | None = None, **env: str
    ) -> WorkerProcess:
        roles = tuple(sorted(roles))
        port = (
            metrics_port
            if metrics_port is not None
            else (self.settings.metrics_port if not self.workers else 0) or free_port()
        )
        api_port = 0
        if "api" in roles:
            first = not any("api" in w.roles for w in self.workers)
            api_port = (self.settings.api_port if first else 0) or free_port(self.settings.api_host)
            env = {"API_PORT": str(api_port), **env}
        child_env = settings_env(self.settings, KAFKA_BOOTSTRAP=self.bootstrap, METRICS_PORT=str(port), **env)
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"worker-{'-'.join(roles)}-{port}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "streamrec.streams.commands.cli", "worker", ",".join(roles)],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
        )
        worker = WorkerProcess(roles, port, process, self.settings.metrics_host, out, api_port=api_port)
        if api_port:
            worker.api_host = self.settings.api_host
        self.workers.append(worker)
        return worker

    def wait_ready(self, timeout: float = 180.0, workers: Sequence[WorkerProcess] | None = None) -> float:
        """Block until every worker reports ready; returns the seconds waited."""
        started = time.monotonic()
        pending = list(workers if workers is not None else self.workers)
        while pending:
            for worker in list(pending):
                code = worker.process.poll()
                if code is not None:
                    raise WorkerError(
                        f"worker {','.join(worker.roles)} exited with code {code} before it was ready"
                        + (f" (log: {worker.log_file.name})" if worker.log_file else "")
                    )
                if worker.is_ready():
                    pending.remove(worker)
            if time.monotonic() - started > timeout:
                names = ", ".join(",".join(w.roles) for w in pending)
                raise WorkerError(f"worker(s) {names} not ready within {timeout:.0f}s")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> dict[str, int]:
        codes = {}
        for worker in reversed(self.workers):
            codes[",".join(worker.roles)] = worker.stop()
        self.workers.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        return codes

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
