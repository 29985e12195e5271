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
from typing import Any

import orjson

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import DeadLetter
from streamrec.streams.errors import BrokerError
from streamrec.streams.kafka.producer import RecoveringProducer
from streamrec.streams.telemetry import Metrics

__all__ = ["DeadLetters", "Output"]

log = logging.getLogger(__name__)

#: A dead letter keeps at most this much of the rejected value (the source offset points at the rest).
MAX_RAW_BYTES = 64 * 1024


def _count_retry(metrics: Metrics | None, operation: str) -> None:
    if metrics is not None:
        metrics.retries.labels(operation).inc()


class Output:
    """An idempotent, acks=all producer with explicit durability points.

    It survives the producer's fatal errors (see `RecoveringProducer`), so what
    it sends is delivered at least once.

    Parameters
    ----------
    config
        librdkafka configuration (servers, security).
    metrics
        Counts retries.
    """

    def __init__(self, config: dict[str, Any], metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._producer = RecoveringProducer(
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
            },
            # Not a method: no reference cycle through the producer.
            on_replaced=lambda _: _count_retry(metrics, "producer_replaced"),
        )

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: str | bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        # A full local queue (broker slow or away) makes this wait for room, never drop.
        self._producer.produce(
            topic,
            value,
            key,
            partition=partition,
            timestamp_ms=timestamp_ms,
            on_full=lambda: _count_retry(self._metrics, "produce_queue_full"),
        )

    def flush_sync(self, timeout: float = 600.0) -> None:
        """Block until every message produced so far is acknowledged by the brokers."""
        if self._producer.flush(timeout) > 0:
            raise BrokerError(f"messages not delivered within {timeout:.0f}s")
        if failed := self._producer.take_failed():
            err, msg = failed[0]
            raise BrokerError(
                f"{len(failed)} message(s) could not be delivered, e.g. to {msg.topic()}: {err.str()}"
            )

    async def flush(self, timeout: float = 600.0) -> None:
        """`flush_sync` without blocking the event loop."""
        if len(self._producer) == 0:
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
            raw_encoding=encoding,
            raw_size=len(raw),
            raw_truncated=truncated,
            ts=time.time(),
        )
        self.output.send(self.topic, orjson.dumps(letter.model_dump()), key=(key or b"")[:1024] or None)
        self.metrics.deadletters.labels(source_topic, error.reason).inc()
        log.debug("dead-lettered %s[%d]@%d: %s", source_topic, partition, offset, error)
