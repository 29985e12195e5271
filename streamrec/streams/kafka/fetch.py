"""One fetch from a consumer, retried on the next call when the broker fails it."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streamrec.streams.telemetry import Metrics

__all__ = ["fetch"]

log = logging.getLogger(__name__)

#: Pause after a failed fetch, so that a broker that is away is not asked in a tight loop.
RETRY_PAUSE_S = 1.0


async def fetch(
    consumer: AIOKafkaConsumer, timeout_ms: int, max_records: int, metrics: Metrics, operation: str
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """`consumer.getmany`, or nothing (after counting a retry and pausing) when it fails."""
    try:
        batches: dict[TopicPartition, list[ConsumerRecord]] = await consumer.getmany(
            timeout_ms=timeout_ms, max_records=max_records
        )
    except KafkaError as exc:
        metrics.retries.labels(operation).inc()
        log.warning("%s failed, retrying: %s", operation, exc)
        await asyncio.sleep(RETRY_PAUSE_S)
        return {}
    return batches
