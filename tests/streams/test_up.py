"""`streamrec up` as a user runs it: its own embedded broker, ready line, clean stop on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient

from streamrec.streams.kafka.broker import free_port
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.vectors.qdrant import point_id
from tests.conftest import wait_for

pytestmark = pytest.mark.broker


class Up:
    def __init__(self, data_dir: Path, port: int) -> None:
        env = {**os.environ, "STREAMREC_KAFKA_SESSION_TIMEOUT_S": "6"}
        env.pop("STREAMREC_KAFKA_BOOTSTRAP", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamrec.streams.commands.cli",
                "up",
                "--data-dir",
                str(data_dir),
                "--metrics-port",
                str(port),
                "--api-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True).start()

    @staticmethod
    def _read(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line.rstrip("\n"))

    def line(self, needle: str) -> str | None:
        return next((line for line in self.lines if needle in line), None)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_runs_the_stack_until_a_signal_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    up = Up(tmp_path, port)
    try:
        wait_for(lambda: up.line("ready") or up.process.poll() is not None, 240, what="the ready line")
        assert up.process.poll() is None, "\n".join(up.errors[-30:])
        bootstrap = up.line("kafka bootstrap:").split(":", 1)[1].strip()  # type: ignore[union-attr]
        assert up.line(f"http://127.0.0.1:{port}/metrics")
        assert up.lines.index(up.line("kafka bootstrap:")) < up.lines.index(up.line("ready"))  # type: ignore[arg-type]

        if stop_signal == signal.SIGTERM:
            # Events flow through the printed bootstrap address, and land in Qdrant.
            config = {"bootstrap.servers": bootstrap}
            recs = Collector(config, "recommendations")
            producer = Replayer(config)
            producer.send(
                "items", {"item_id": "tuner", "title": "Clip-on chromatic tuner", "ts": time.time()}, "tuner"
            )
            producer.send("items", {"item_id": "capo", "title": "Guitar capo", "ts": time.time()}, "capo")
            producer.flush()
            time.sleep(2)
            review = {
                "user_id": "ann",
                "item_id": "tuner",
                "text": "Accurate tuner, easy to read.",
                "rating": 5,
                "ts": time.time(),
            }
            producer.send("reviews", review, "ann")
            producer.flush()
            wait_for(
                lambda: any(m["user_id"] == "ann" for _, m in recs.messages), 90, what="ann's recommendation"
            )
            recs.close()
            # The API whose address `up` printed answers with the list it published.
            url = up.line("api: http://").split()[1]  # type: ignore[union-attr]
            assert httpx.get(f"{url}/healthz", timeout=5).json()["ready"]
            answer = wait_for(
                lambda: (lambda r: r if r.headers.get("x-streamrec-list") == "stored" else None)(
                    httpx.get(f"{url}/v1/users/ann/recommendations", timeout=5)
                ),
                30,
                what="ann's stored list from the API",
            )
            assert answer.json()["user_id"] == "ann" and answer.json()["items"]
            # Filters and a user never seen are answered on request.
            filtered = httpx.get(f"{url}/v1/users/ann/recommendations", params={"exclude": "capo"}, timeout=5)
            assert filtered.headers["x-streamrec-list"] == "computed"
            assert "capo" not in [i["item_id"] for i in filtered.json()["items"]]
            stranger = httpx.get(f"{url}/v1/users/nobody/recommendations", timeout=5).json()
            assert stranger["items"] and stranger["items"][0]["reasons"][0].startswith("new here")
            time.sleep(2.5)  # the Qdrant view is flushed every 2 s

        started = time.monotonic()
        up.process.send_signal(stop_signal)
        code = up.process.wait(60)
        assert code == 0, "\n".join(up.errors[-30:])
        assert time.monotonic() - started < 45
        time.sleep(0.2)
        assert not any("Traceback" in line for line in up.errors), "\n".join(up.errors)
    finally:
        if up.process.poll() is None:
            up.process.kill()

    if stop_signal == signal.SIGTERM:
        assert (tmp_path / "cf" / "checkpoint.pkl").exists()
        client = QdrantClient(path=str(tmp_path / "qdrant"))
        try:
            # A collection of each kind, named by the encoder version whose text vectors it holds.
            names = [c.name for c in client.get_collections().collections]
            at = {kind: next(n for n in names if n.startswith(f"{kind}-t")) for kind in ("items", "users")}
            items = client.retrieve(
                at["items"], [point_id(at["items"], "tuner")], with_vectors=True, with_payload=True
            )
            assert items and set(items[0].vector) >= {"text", "cf"}
            assert items[0].payload["title"] == "Clip-on chromatic tuner"
            users = client.retrieve(at["users"], [point_id(at["users"], "ann")], with_vectors=True)
            assert users and "text" in users[0].vector
        finally:
            client.close()


def test_worker_without_kafka_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREAMREC_KAFKA_BOOTSTRAP"}
    result = subprocess.run(
        [sys.executable, "-m", "streamrec.streams.commands.cli", "worker", "cf", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--kafka-bootstrap" in result.stderr
    assert "Traceback" not in result.stderr
