"""Kafka client configuration: the settings translated once for each client library streamrec uses.

librdkafka (confluent-kafka: producers, admin, test consumers), aiokafka (the roles' own
consumers) and faust (the app that hosts the roles) name the same things differently. The
security settings are read in one place, `_Security`, and each client's configuration is
rendered from it; a worker builds its `KafkaClients` once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from streamrec.streams.errors import BrokerError
from streamrec.streams.settings import Settings

__all__ = ["KafkaClients", "aiokafka_config", "kafka_config"]


@dataclass(frozen=True)
class _Security:
    """How to authenticate, with secrets revealed: only for building client configurations."""

    protocol: str
    sasl_mechanism: str
    sasl_username: str | None
    sasl_password: str | None
    ssl_cafile: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    ssl_key_password: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> _Security:
        sec = settings.kafka_security

        def reveal(secret: Any) -> str | None:
            return secret.get_secret_value() if secret is not None else None

        def path(value: Any) -> str | None:
            return str(value) if value else None

        return cls(
            protocol=sec.protocol,
            sasl_mechanism=sec.sasl_mechanism,
            sasl_username=sec.sasl_username,
            sasl_password=reveal(sec.sasl_password),
            ssl_cafile=path(sec.ssl_cafile),
            ssl_certfile=path(sec.ssl_certfile),
            ssl_keyfile=path(sec.ssl_keyfile),
            ssl_key_password=reveal(sec.ssl_key_password),
        )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def ssl(self) -> bool:
        return self.protocol.endswith("SSL")

    def ssl_context(self) -> Any:
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=self.ssl_cafile,
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=self.ssl_key_password,
        )


@dataclass(frozen=True)
class KafkaClients:
    """The configuration of every Kafka client of one process, for one cluster.

    Parameters
    ----------
    servers
        `HOST:PORT[,...]`.
    security
        Authentication, read from the settings once.
    fetch_max_wait_ms
        Longest a consumer's fetch waits for data (`Settings.fetch_max_wait_ms`).
    """

    servers: str
    security: _Security
    fetch_max_wait_ms: int

    @classmethod
    def create(cls, settings: Settings, bootstrap: str | None = None) -> KafkaClients:
        servers = bootstrap or settings.kafka_bootstrap
        if not servers:
            raise BrokerError(
                "no Kafka bootstrap servers: set --kafka-bootstrap or start the embedded broker"
            )
        return cls(servers, _Security.from_settings(settings), settings.fetch_max_wait_ms)

    @property
    def librdkafka(self) -> dict[str, Any]:
        """confluent-kafka's configuration: servers and security."""
        sec = self.security
        config: dict[str, Any] = {
            "bootstrap.servers": self.servers,
            "security.protocol": sec.protocol,
            # librdkafka's own log lines (e.g. a broker going away) go through logging, not stderr.
            "logger": logging.getLogger("streamrec.kafka"),
        }
        if sec.sasl:
            config["sasl.mechanism"] = sec.sasl_mechanism
            if sec.sasl_username is not None:
                config["sasl.username"] = sec.sasl_username
            if sec.sasl_password is not None:
                config["sasl.password"] = sec.sasl_password
        if sec.ssl:
            for key, value in (
                ("ssl.ca.location", sec.ssl_cafile),
                ("ssl.certificate.location", sec.ssl_certfile),
                ("ssl.key.location", sec.ssl_keyfile),
                ("ssl.key.password", sec.ssl_key_password),
            ):
                if value is not None:
                    config[key] = value
        return config

    @property
    def aiokafka(self) -> dict[str, Any]:
        """aiokafka's configuration: servers, security and the fetch wait."""
        sec = self.security
        config: dict[str, Any] = {
            "bootstrap_servers": self.servers.split(","),
            "security_protocol": sec.protocol,
            # While a broker is away, retry every half second rather than every 100 ms.
            "retry_backoff_ms": 500,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
        }
        if sec.sasl:
            config["sasl_mechanism"] = sec.sasl_mechanism
            config["sasl_plain_username"] = sec.sasl_username
            config["sasl_plain_password"] = sec.sasl_password
        if sec.ssl:
            config["ssl_context"] = sec.ssl_context()
        return config

    @property
    def aiokafka_admin(self) -> dict[str, Any]:
        """aiokafka's admin client configuration: the consumers' without the fetch wait."""
        config = self.aiokafka
        del config["fetch_max_wait_ms"]
        return config

    def topics(self, timeout: float = 10.0) -> list[str]:
        """The names of the cluster's topics (blocking: run it off the event loop)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient(self.librdkafka).list_topics(timeout=timeout)
        except KafkaException as exc:
            raise BrokerError(f"Kafka at {self.servers} did not answer: {exc}") from None
        return sorted(metadata.topics)

    def partitions(self, topic: str, timeout: float = 10.0) -> list[int]:
        """The partition ids of `topic`, asked of the cluster (blocking: run it off the event loop).

        Raises `BrokerError` if the topic does not exist or the cluster does not answer.
        """
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient(self.librdkafka).list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise BrokerError(f"Kafka at {self.servers} did not answer: {exc}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise BrokerError(f"topic {topic!r} must exist, got {found.error if found else 'none'}")
        return sorted(found.partitions)

    def faust_credentials(self) -> Any:
        """faust's broker credentials, or None for PLAINTEXT."""
        import faust

        sec = self.security
        if sec.sasl:
            return faust.SASLCredentials(
                username=sec.sasl_username,
                password=sec.sasl_password,
                mechanism=sec.sasl_mechanism,
                ssl_context=sec.ssl_context() if sec.ssl else None,
            )
        if sec.ssl:
            return faust.SSLCredentials(sec.ssl_context())
        return None


def kafka_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """confluent-kafka's configuration for `settings` (see `KafkaClients.librdkafka`)."""
    return KafkaClients.create(settings, bootstrap).librdkafka


def aiokafka_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """aiokafka's configuration for `settings` (see `KafkaClients.aiokafka`)."""
    return KafkaClients.create(settings, bootstrap).aiokafka
