"""Topic names, their settings, and Kafka client configuration from `Settings`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from streamrec.streams.errors import BrokerError
from streamrec.streams.settings import Settings

__all__ = ["TOPIC_CONFIGS", "Topics", "aiokafka_config", "ensure_topics", "kafka_config", "ssl_context"]

log = logging.getLogger(__name__)

#: Every topic streamrec uses, with its Kafka settings.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # inputs
    "clicks": {},
    "reviews": {},
    "items": {"cleanup.policy": "compact"},
    "forget": {},
    # outputs
    "recommendations": {},
    "deadletter": {},
    "audit": {},
    # between roles: encoder and CF publish vectors, the recommender indexes them
    "vectors": {"cleanup.policy": "compact"},
    # review vectors, keyed by author and review: the log item text vectors are folded
    # from, kept until a `forget` request tombstones an author's reviews
    "reviews-encoded": {"cleanup.policy": "compact"},
    # between CF workers: changes to item factors, so that all hold one set of them
    "cf-deltas": {},
}


@dataclass(frozen=True)
class Topics:
    """Topic names with the configured prefix."""

    clicks: str
    reviews: str
    items: str
    forget: str
    recommendations: str
    deadletter: str
    audit: str
    vectors: str
    reviews_encoded: str
    cf_deltas: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(**{name.replace("-", "_"): settings.topic(name) for name in TOPIC_CONFIGS})

    def all(self) -> list[str]:
        return [getattr(self, name.replace("-", "_")) for name in TOPIC_CONFIGS]


def kafka_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """librdkafka (confluent-kafka) configuration: servers and security."""
    servers = bootstrap or settings.kafka_bootstrap
    if not servers:
        raise BrokerError("no Kafka bootstrap servers: set --kafka-bootstrap or start the embedded broker")
    sec = settings.kafka_security
    config: dict[str, Any] = {
        "bootstrap.servers": servers,
        "security.protocol": sec.protocol,
        # librdkafka's own log lines (e.g. a broker going away) go through logging, not stderr.
        "logger": logging.getLogger("streamrec.kafka"),
    }
    if sec.protocol.startswith("SASL"):
        config["sasl.mechanism"] = sec.sasl_mechanism
        if sec.sasl_username is not None:
            config["sasl.username"] = sec.sasl_username
        if sec.sasl_password is not None:
            config["sasl.password"] = sec.sasl_password.get_secret_value()
    if sec.protocol.endswith("SSL"):
        if sec.ssl_cafile:
            config["ssl.ca.location"] = str(sec.ssl_cafile)
        if sec.ssl_certfile:
            config["ssl.certificate.location"] = str(sec.ssl_certfile)
        if sec.ssl_keyfile:
            config["ssl.key.location"] = str(sec.ssl_keyfile)
        if sec.ssl_key_password is not None:
            config["ssl.key.password"] = sec.ssl_key_password.get_secret_value()
    return config


def ensure_topics(settings: Settings, bootstrap: str | None = None, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Waits (with backoff) up to `timeout` seconds for the cluster to answer, so that
    a broker still starting is not an error.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_config(settings, bootstrap))
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            existing = set(admin.list_topics(timeout=5).topics)
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"Kafka at {bootstrap or settings.kafka_bootstrap} did not answer: {exc}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    wanted = [
        NewTopic(
            settings.topic(name),
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config=config,
        )
        for name, config in TOPIC_CONFIGS.items()
        if settings.topic(name) not in existing
    ]
    created = []
    if wanted:
        for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise BrokerError(f"could not create topic {name!r}: {exc}") from None
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created


def aiokafka_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """aiokafka (faust's client) configuration: servers and security."""
    servers = bootstrap or settings.kafka_bootstrap
    if not servers:
        raise BrokerError("no Kafka bootstrap servers: set --kafka-bootstrap or start the embedded broker")
    sec = settings.kafka_security
    config: dict[str, Any] = {
        "bootstrap_servers": servers.split(","),
        "security_protocol": sec.protocol,
        # While a broker is away, retry every half second rather than every 100 ms.
        "retry_backoff_ms": 500,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
    }
    if sec.protocol.startswith("SASL"):
        config["sasl_mechanism"] = sec.sasl_mechanism
        config["sasl_plain_username"] = sec.sasl_username
        config["sasl_plain_password"] = (
            sec.sasl_password.get_secret_value() if sec.sasl_password is not None else None
        )
    if sec.protocol.endswith("SSL"):
        config["ssl_context"] = ssl_context(settings)
    return config


def ssl_context(settings: Settings) -> Any:
    from aiokafka.helpers import create_ssl_context

    sec = settings.kafka_security
    return create_ssl_context(
        cafile=str(sec.ssl_cafile) if sec.ssl_cafile else None,
        certfile=str(sec.ssl_certfile) if sec.ssl_certfile else None,
        keyfile=str(sec.ssl_keyfile) if sec.ssl_keyfile else None,
        password=sec.ssl_key_password.get_secret_value() if sec.ssl_key_password else None,
    )
