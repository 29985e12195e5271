"""Client side of the contract: produce events at a pace, and collect what comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from streamrec.streams.kafka.producer import RecoveringProducer

__all__ = ["Collector", "Delivered", "Replayer"]


@dataclass(frozen=True)
class Delivered:
    """Where an event landed."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None = None


class Replayer:
    """Produces JSON events as a client would, optionally paced, remembering where each landed."""

    def __init__(self, config: Mapping[str, Any], keep_values: bool = False) -> None:
        self.keep_values = keep_values
        self.delivered: list[Delivered] = []
        self.errors: list[str] = []
        delivered, lock = self.delivered, threading.Lock()

        # Not a bound method: the producer must not keep this object alive in a cycle (its
        # librdkafka handle would then live, and retry a broker gone, until the next GC).
        def on_delivered(msg: Message) -> None:
            raw_key = msg.key()
            key = raw_key.decode("utf-8", "replace") if raw_key else None
            value = msg.value() if keep_values else None
            with lock:
                delivered.append(
                    Delivered(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0), key, value)
                )

        self._producer = RecoveringProducer(
            {**config, "linger.ms": 5, "enable.idempotence": True}, on_delivered=on_delivered
        )

    def send(self, topic: str, value: Mapping[str, Any] | bytes | None, key: str | None = None) -> None:
        """Produce one event (`None`: a tombstone for `key`)."""
        raw = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
        self._producer.produce(topic, raw, key.encode() if key else None)
        self._take_errors()

    def _take_errors(self) -> None:
        self.errors.extend(f"{msg.topic()}: {err.str()}" for err, msg in self._producer.take_failed())

    def replay(
        self,
        events: Iterable[tuple[str, Mapping[str, Any] | bytes, str | None]],
        rate: float = 0.0,
        progress: Any = None,
    ) -> int:
        """Send `(topic, value, key)` events, at `rate` per second if > 0; returns the count."""
        started = time.monotonic()
        n = 0
        for topic, value, key in events:
            if rate > 0:
                due = started + n / rate
                # poll() returns early when a delivery report arrives: wait out the rest.
                while (delay := due - time.monotonic()) > 0:
                    self._producer.poll(delay)
            self.send(topic, value, key)
            n += 1
            if progress is not None:
                progress(1)
        return n

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        self._take_errors()
        if remaining:
            raise TimeoutError(f"{remaining} events not delivered within {timeout:.0f}s")


@dataclass
class Collector:
    """Reads a topic from the beginning in a thread (no consumer group, so no join to wait for)."""

    config: Mapping[str, Any]
    topic: str
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    #: Longest a fetch waits for data. Short, since some brokers hold a fetch for the whole wait
    #: and this reads latency; a broker on slow storage needs longer (`Settings.fetch_max_wait_ms`).
    fetch_wait_ms: int = 10

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **self.config,
                "group.id": "streamrec-collector",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": self.fetch_wait_ms,
            }
        )
        metadata = self._consumer.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self._consumer.close()
            raise LookupError(
                f"topic {self.topic!r} must exist to be read, got {topic.error if topic else 'none'}"
            )
        partitions = topic.partitions
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread = threading.Thread(target=self._run, name=f"collect-{self.topic}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(1000, 0.1):
                value = msg.value()
                if msg.error() or value is None:
                    continue
                self.messages.append((time.time(), orjson.loads(value)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
