"""What workers produce: one confluent-kafka producer, and dead letters through it.

Workers produce their results (recommendations, vectors, dead letters) with
librdkafka rather than through faust: it batches in C, and `flush()` tells when
everything produced so far is durable, which is when a worker may commit.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from streamrec.model.errors import InvalidEvent
from streamrec.model.schemas import DeadLetter
from streamrec.streams.errors import BrokerError
from streamrec.streams.telemetry import Metrics

__all__ = ["DeadLetters", "Output"]

log = logging.getLogger(__name__)

#: A dead letter keeps at most this much of the rejected value (the source offset points at the rest).
MAX_RAW_BYTES = 64 * 1024


class Output:
    """An idempotent, acks=all producer with explicit durability points.

    Parameters
    ----------
    config
        librdkafka configuration (servers, security).
    metrics
        Counts retries.
    """

    def __init__(self, config: dict[str, Any], metrics: Metrics | None = None) -> None:
        self._producer = Producer(
            {
                **config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 1_000_000,
                # A broker outage shorter than this loses nothing: messages wait in the queue.
                "message.timeout.ms": 600_000,
                "message.max.bytes": 4_000_000,
            }
        )
        self._metrics = metrics
        self._failed: list[str] = []
        self._on_delivery: Callable[[KafkaError | None, Message], None] = self._delivered

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed.append(f"{msg.topic()}: {err}")

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: str | bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"on_delivery": self._on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                break
            except BufferError:
                # The local queue is full (broker slow or away): let it drain, never drop.
                if self._metrics is not None:
                    self._metrics.retries.labels("produce_queue_full").inc()
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush_sync(self, timeout: float = 600.0) -> None:
        """Block until every message produced so far is acknowledged by the brokers."""
        deadline = time.monotonic() + timeout
        while self._producer.flush(1.0) > 0:
            if time.monotonic() > deadline:
                raise BrokerError(f"messages not delivered within {timeout:.0f}s")
        if self._failed:
            failed, self._failed = self._failed, []
            raise BrokerError(f"{len(failed)} message(s) could not be delivered, e.g. {failed[0]}")

    async def flush(self, timeout: float = 600.0) -> None:
        """`flush_sync` without blocking the event loop."""
        if len(self._producer) == 0 and not self._failed:
            return
        await asyncio.get_running_loop().run_in_executor(None, self.flush_sync, timeout)

    def close(self) -> None:
        try:
            self.flush_sync(timeout=10.0)
        except BrokerError as exc:
            log.warning("closing producer: %s", exc)


class DeadLetters:
    """Sends rejected messages to the dead-letter topic with the reason, and counts them."""

    def __init__(self, output: Output, topic: str, metrics: Metrics) -> None:
        self.output = output
        self.topic = topic
        self.metrics = metrics

    def send(
        self,
        source_topic: str,
        partition: int,
        offset: int,
        error: InvalidEvent,
        raw: bytes | None,
        key: bytes | None = None,
    ) -> None:
        raw = raw or b""
        truncated = len(raw) > MAX_RAW_BYTES
        body = raw[:MAX_RAW_BYTES]
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
        letter = DeadLetter(
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            reason=error.reason,
            error=str(error),
            raw=text,
            raw_encoding=encoding,  # type: ignore[arg-type]
            raw_size=len(raw),
            raw_truncated=truncated,
            ts=time.time(),
        )
        self.output.send(self.topic, orjson.dumps(letter.model_dump()), key=(key or b"")[:1024] or None)
        self.metrics.deadletters.labels(source_topic, error.reason).inc()
        log.debug("dead-lettered %s[%d]@%d: %s", source_topic, partition, offset, error)
