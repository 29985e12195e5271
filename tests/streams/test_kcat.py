"""Interop: kcat (librdkafka's command-line client) produces the events and reads the recommendation.

Nothing of streamrec's own client code is on the client side here, so this checks the
contract as any Kafka client meets it: JSON values, the user id as key.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest

from streamrec.model.events.schemas import Recommendation
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from tests.conftest import wait_for
from tests.streams.test_infra import require_tool

pytestmark = pytest.mark.broker


@dataclass(frozen=True)
class Kcat:
    binary: str
    bootstrap: str
    env: dict[str, str]

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-b", self.bootstrap, *args],
            input=stdin,
            capture_output=True,
            text=True,
            # Other tests share the topics and put invalid UTF-8 on them on purpose.
            errors="replace",
            timeout=timeout,
            env=self.env,
        )

    def produce(self, topic: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
        # -K: splits each line at its first colon: the key before it, the JSON value after.
        lines = "".join(f"{key}:{json.dumps(value)}\n" for key, value in messages)
        result = self.run("-P", "-t", topic, "-K:", stdin=lines)
        assert result.returncode == 0, result.stderr

    def consume(self, topic: str) -> list[dict[str, Any]]:
        """Every message of the topic so far, as kcat's JSON envelopes (key, payload, partition, offset)."""
        result = self.run("-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def kcat(session_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Kcat:
    """kcat against the session broker, on a librdkafka that can talk to it."""
    assert session_settings.kafka_bootstrap
    tool = Kcat(require_tool("kcat"), session_settings.kafka_bootstrap, dict(os.environ))
    probe = tool.run("-L", "-m", "3")
    if probe.returncode == 0:
        return tool
    # Debian 12's kcat links librdkafka 2.0.2, which fails the ApiVersions handshake with the
    # embedded tansu broker ("Read underflow"; Apache Kafka is fine). Same kcat, on the
    # librdkafka that the project's own clients (confluent-kafka) ship:
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    bundled = sorted(libs.glob("librdkafka*.so*"))
    assert bundled, f"kcat cannot reach {tool.bootstrap}: {probe.stderr}"
    lib_dir = tmp_path_factory.mktemp("librdkafka")
    (lib_dir / "librdkafka.so.1").symlink_to(bundled[0])
    env = {
        **tool.env,
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(lib_dir), tool.env.get("LD_LIBRARY_PATH")])),
    }
    tool = Kcat(tool.binary, tool.bootstrap, env)
    probe = tool.run("-L", "-m", "3")
    assert probe.returncode == 0, f"kcat cannot reach {tool.bootstrap}: {probe.stderr}"
    return tool


def test_kcat_events_in_recommendation_out(
    worker: WorkerProcess, kcat: Kcat, topics: Topics, vectors: Collector, ns: str
) -> None:
    now = time.time()
    clicked, similar, user = f"{ns}-kcat-uke", f"{ns}-kcat-uke-case", f"{ns}-kcat-user"
    kcat.produce(
        topics.items,
        [
            (
                clicked,
                {"item_id": clicked, "title": "Soprano ukulele, mahogany, with nylon strings", "ts": now},
            ),
            (
                similar,
                {
                    "item_id": similar,
                    "title": "Padded gig bag for soprano ukulele",
                    "tags": ["ukulele"],
                    "ts": now,
                },
            ),
        ],
    )
    wait_for(
        lambda: (
            {clicked, similar}
            <= {m["id"] for _, m in vectors.messages if m["kind"] == "item" and m["name"] == "text"}
        ),
        90,
        what="the encoder to publish the items' text vectors",
    )
    kcat.produce(topics.clicks, [(user, {"user_id": user, "item_id": clicked, "event": "click", "ts": now})])
    (click,) = wait_for(
        lambda: [m for m in kcat.consume(topics.clicks) if m["key"] == user],
        30,
        what="kcat to read its click back",
    )

    def recommendation() -> dict[str, Any] | None:
        return next((m for m in kcat.consume(topics.recommendations) if m["key"] == user), None)

    envelope = wait_for(recommendation, 60, interval=0.5, what="a recommendation for the kcat user")
    rec = Recommendation.model_validate(json.loads(envelope["payload"]))
    assert rec.user_id == user
    assert (rec.trigger.topic, rec.trigger.partition, rec.trigger.offset) == (
        topics.clicks,
        click["partition"],
        click["offset"],
    ), "the trigger must name the click kcat produced"
    assert abs(rec.trigger.ts - click["ts"] / 1000) < 1, "trigger.ts is the click's Kafka timestamp"
    assert rec.items and clicked not in {i.item_id for i in rec.items}
    assert all(item.reasons for item in rec.items)
