"""Reading partitions of compacted topics from their start to their end, once (a state's recovery)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streamrec.streams.kafka.clients import KafkaClients

__all__ = ["read_to_end"]

log = logging.getLogger(__name__)

#: Most records handed to `apply` at a time.
BATCH = 10_000


async def read_to_end(
    clients: KafkaClients,
    topics: Sequence[str],
    partitions: Sequence[int],
    apply: Callable[[int, Sequence[ConsumerRecord]], None],
) -> int:
    """Hand `apply` every record of these partitions of `topics`, topic after topic in the order
    given (a later topic's record of a key overrides an earlier one's), each partition in offset
    order, at least up to the end each had when the read began; returns how many were read.

    A partition is done once it is past that end and a fetch finds nothing more in it: a broker
    may report an end short of its last record batch (tansu gives the end of a batch's first
    record), so the reported end alone would stop the read early."""
    read = 0
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **clients.aiokafka,
    )
    await consumer.start()
    try:
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in partitions]
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            left = {tp for tp in tps if ends[tp] > starts[tp]}
            if not left:
                continue
            consumer.assign(sorted(left))
            await consumer.seek_to_beginning(*left)
            while left:
                batches = await consumer.getmany(*left, timeout_ms=500, max_records=BATCH)
                for tp, records in batches.items():
                    if records:
                        apply(tp.partition, records)
                        read += len(records)
                for tp in list(left):
                    if not batches.get(tp) and await consumer.position(tp) >= ends[tp]:
                        left.discard(tp)
    finally:
        await _stop(consumer)
    return read


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer; a consumer stopped right after its start can raise the cancellation of a
    task of its own that had not begun (aiokafka 0.12), which is not this task's to end with."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
