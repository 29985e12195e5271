"""Topic names, their Kafka settings, and creating them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from streamrec.streams.errors import BrokerError
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.settings import Settings

__all__ = ["TOPIC_CONFIGS", "Topics", "ensure_topics", "topic_configs"]

log = logging.getLogger(__name__)

#: Every topic streamrec uses, with its Kafka settings.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # inputs
    "clicks": {},
    "reviews": {},
    "items": {"cleanup.policy": "compact"},
    "forget": {},
    # outputs
    # the latest list per user: a consumer that starts late rebuilds every user's list from it
    "recommendations": {"cleanup.policy": "compact"},
    "deadletter": {},
    "audit": {},
    # readable user profiles, the latest per user
    "profiles": {"cleanup.policy": "compact"},
    # between roles: encoder and CF publish vectors, the recommender indexes them
    "vectors": {"cleanup.policy": "compact"},
    # review vectors, keyed by author and review: the log item text vectors are folded
    # from, kept until a `forget` request tombstones an author's reviews
    "reviews-encoded": {"cleanup.policy": "compact"},
    # the recommender's user profiles, keyed by user, in the partition of the events that
    # changed them: the partition's next owner reads them back
    "profiles-changelog": {"cleanup.policy": "compact"},
    # between CF workers, the group's log (its first partition): claims of input partitions, then
    # each checkpoint's changes to item factors and its commit, valid while its claims hold
    "cf-deltas": {},
    # API processes' snapshots of their copy (chunks, then a manifest; `kafka.snapshots`), which a
    # new API process with no checkpoint of its own starts from; what a process that went for good
    # left there expires (a live one publishes far more often)
    "api-snapshots": {"cleanup.policy": "compact,delete", "retention.ms": str(7 * 86_400_000)},
}


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """`TOPIC_CONFIGS` with what the settings add: the dead letters' retention.

    >>> topic_configs(Settings(deadletter_retention_days=1))["deadletter"]
    {'retention.ms': '86400000'}
    """
    retention = str(round(settings.deadletter_retention_days * 86_400_000))
    return {**TOPIC_CONFIGS, "deadletter": {**TOPIC_CONFIGS["deadletter"], "retention.ms": retention}}


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
    profiles: str
    vectors: str
    reviews_encoded: str
    profiles_changelog: str
    cf_deltas: str
    api_snapshots: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(**{name.replace("-", "_"): settings.topic(name) for name in TOPIC_CONFIGS})

    def all(self) -> list[str]:
        return [getattr(self, name.replace("-", "_")) for name in TOPIC_CONFIGS]


def ensure_topics(settings: Settings, bootstrap: str | None = None, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Waits (with backoff) up to `timeout` seconds for the cluster to answer, so that
    a broker still starting is not an error.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in the stubs' exports

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
        for name, config in topic_configs(settings).items()
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
    _align_configs(admin, settings, existing, timeout)
    return created


def _align_configs(admin: Any, settings: Settings, existing: set[str], timeout: float) -> list[str]:
    """Give topics that existed before the settings streamrec now needs of them (a topic made
    compacted in a later version, say); names the topics changed. A broker or an ACL that refuses
    is logged with what to set by hand, and the caller goes on."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in the stubs' exports
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    wanted = {
        settings.topic(name): config
        for name, config in topic_configs(settings).items()
        if config and settings.topic(name) in existing
    }
    changed = []
    for topic, config in wanted.items():
        resource = ConfigResource("topic", topic)
        try:
            have = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
            stale = {k: v for k, v in config.items() if not _satisfied(k, v, have.get(k))}
            if not stale:
                continue
            entries = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in stale.items()
            ]
            update = ConfigResource("topic", topic, incremental_configs=entries)
            admin.incremental_alter_configs([update], request_timeout=timeout)[update].result()
        except (KafkaException, ValueError) as exc:
            settings_text = ", ".join(f"{k}={v}" for k, v in config.items())
            log.warning(
                "topic %s needs %s and could not be changed (%s): set it by hand", topic, settings_text, exc
            )
            continue
        log.info("topic %s: set %s", topic, ", ".join(f"{k}={v}" for k, v in stale.items()))
        changed.append(topic)
    return changed


def _satisfied(key: str, wanted: str, have: Any) -> bool:
    """Whether a topic's setting gives what streamrec needs: compaction may come with deletion
    (`compact,delete`, an operator's retention on top)."""
    value = getattr(have, "value", None)
    if value is None:
        return False
    if key == "cleanup.policy":
        return set(wanted.split(",")) <= {p.strip() for p in str(value).split(",")}
    return bool(value == wanted)
