"""What every role of a worker process shares: settings, topics, metrics, producer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from streamrec.model.events.parser import EventParser
from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.output import DeadLetters, Output
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics

__all__ = ["Context"]

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    #: The configuration of every Kafka client of this process, built once.
    clients: KafkaClients
    roles: tuple[str, ...]
    metrics: Metrics
    topics: Topics
    output: Output
    deadletters: DeadLetters
    parser: EventParser
    #: Each role adds a check; the worker is ready when all pass (after a rebalance too).
    ready_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)

    @classmethod
    def create(
        cls, settings: Settings, clients: KafkaClients, roles: tuple[str, ...], metrics: Metrics
    ) -> Context:
        topics = Topics.from_settings(settings)
        output = Output(clients.librdkafka, metrics)
        return cls(
            settings=settings,
            clients=clients,
            roles=roles,
            metrics=metrics,
            topics=topics,
            output=output,
            deadletters=DeadLetters(output, topics.deadletter, metrics),
            parser=EventParser(settings.limits, settings.modalities),
        )
