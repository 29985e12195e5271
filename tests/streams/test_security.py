"""Security settings: how they reach each Kafka client, and that secrets never leak."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamrec.streams.commands.cli import app
from streamrec.streams.kafka.broker import free_port
from streamrec.streams.kafka.clients import KafkaClients, aiokafka_config, kafka_config
from streamrec.streams.settings import Settings
from tests.conftest import wait_for

SECRET = "correct-horse-battery-staple"


def _sasl(mechanism: str, protocol: str = "SASL_SSL", tmp_path: Path | None = None) -> Settings:
    ca = None
    if tmp_path is not None:
        import certifi

        ca = tmp_path / "ca.pem"
        ca.write_bytes(Path(certifi.where()).read_bytes())  # any real CA bundle
    return Settings(
        kafka_bootstrap="kafka:9093",
        kafka_security={
            "protocol": protocol,
            "sasl_mechanism": mechanism,
            "sasl_username": "svc",
            "sasl_password": SECRET,
            "ssl_cafile": ca,
        },
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_reach_every_kafka_client(mechanism: str, tmp_path: Path) -> None:
    settings = _sasl(mechanism, tmp_path=tmp_path)
    confluent = kafka_config(settings)
    assert confluent["security.protocol"] == "SASL_SSL"
    assert confluent["sasl.mechanism"] == mechanism
    assert confluent["sasl.username"] == "svc" and confluent["sasl.password"] == SECRET
    assert confluent["ssl.ca.location"] == str(tmp_path / "ca.pem")
    aio = aiokafka_config(settings)
    assert aio["security_protocol"] == "SASL_SSL" and aio["sasl_mechanism"] == mechanism
    assert aio["sasl_plain_username"] == "svc" and aio["sasl_plain_password"] == SECRET
    assert aio["ssl_context"] is not None
    credentials = KafkaClients.create(settings).faust_credentials()
    assert credentials.username == "svc" and credentials.password == SECRET
    assert credentials.mechanism.value == mechanism


def test_plaintext_has_no_auth_settings() -> None:
    settings = Settings(kafka_bootstrap="localhost:9092")
    assert "sasl.password" not in kafka_config(settings)
    assert KafkaClients.create(settings).faust_credentials() is None


def test_secrets_are_masked_in_settings_repr_and_dumps() -> None:
    settings = Settings(
        qdrant_api_key=SECRET, kafka_security={"sasl_password": SECRET, "ssl_key_password": SECRET}
    )
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.masked())


def test_help_shows_no_secret_defaults() -> None:
    env = {"STREAMREC_QDRANT_API_KEY": SECRET, "STREAMREC_KAFKA_SECURITY__SASL_PASSWORD": SECRET}
    runner = CliRunner()
    for command in (["--help"], ["up", "--help"], ["worker", "--help"], ["config"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output, command


@pytest.mark.broker
def test_a_running_worker_logs_and_exports_no_secret(bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STREAMREC_KAFKA_BOOTSTRAP": bootstrap,
        "STREAMREC_TOPIC_PREFIX": f"sec{int(time.time())}-",
        "STREAMREC_DATA_DIR": str(tmp_path),
        "STREAMREC_METRICS_PORT": str(port),
        "STREAMREC_KAFKA_SESSION_TIMEOUT_S": "6",
        "STREAMREC_LOG_LEVEL": "debug",
        # Present but unused (no Qdrant URL, PLAINTEXT Kafka): they must still never be printed.
        "STREAMREC_QDRANT_API_KEY": SECRET,
        "STREAMREC_KAFKA_SECURITY__SASL_PASSWORD": SECRET,
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamrec.streams.commands.cli", "worker", "cf"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        import urllib.request

        def metrics() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
                return text if 'streamrec_worker_ready{role="cf"} 1.0' in text else None
            except OSError:
                return None

        exported = wait_for(metrics, 120, what="the worker to be ready")
    finally:
        process.terminate()
        process.wait(60)
    text = log.read_text(errors="replace")
    assert "settings (secrets masked)" in text and "**********" in text
    assert SECRET not in text
    assert SECRET not in exported
