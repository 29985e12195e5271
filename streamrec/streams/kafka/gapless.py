"""Each partition handed to a faust agent in offset order, with nothing missing.

faust (0.15) can leave a record out of an agent's stream: a record that reaches the stream
while flow is suspended, or from a past group generation, is dropped without being acked or
read again, and when it was the first after the committed offset (a restart, a rebalance)
its commit logic then moves past it: `Consumer._new_offset` sees a head hole of one record
(committed 109, acked 110, 111, ...) as no hole and commits 112. The record is then lost for
good, while what came after it counts. The review crash test caught it: one review in about
ten runs, the one at the committed offset when the recommender restarted, missing from the
recommender's counts.

`Gapless` checks every batch against the next offset the role has still to apply (from its
checkpoint and what it handled since; where the group went on without it, from the group's
committed offset) and reads what the stream skipped straight from the partition (a consumer
of its own, outside the group), so that the role applies every record once and in order. The
records read that way are acked like the others, so faust's commits close over them. Offsets
with no record behind them (compaction, transaction markers) are passed over; the read that
finds them also keeps what it fetched past them, so a compacted stretch costs one read, not
one per hole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP, EventT
from faust.types.tuples import ConsumerMessage

from streamrec.model.events.offsets import partition_key
from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.telemetry import Metrics

__all__ = ["Gapless"]

log = logging.getLogger(__name__)

#: Most records read back for one hole at a time; a larger hole is read over several batches.
READ_LIMIT = 10_000
#: How long one read back may take before the batch waits for the next one.
READ_TIMEOUT_S = 30.0


class Gapless:
    """Completes a faust agent's batches with the records its stream skipped.

    Parameters
    ----------
    app
        The faust app whose agent reads the partitions (its group, its consumer's acks).
    clients
        How to reach the brokers.
    metrics
        Where the records read back are counted.
    role
        The role, for the metrics and the log.
    applied
        The role's next offset to apply per "topic:partition" (what its checkpoint holds, and
        every event it handled since).
    topics
        The topics to complete (default: all the agent reads).
    """

    def __init__(
        self,
        app: faust.App,
        clients: KafkaClients,
        metrics: Metrics,
        role: str,
        applied: Callable[[], Mapping[str, int]],
        topics: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.clients = clients
        self.metrics = metrics
        self.role = role
        self.applied = applied
        self.topics = None if topics is None else set(topics)
        self._consumer: AIOKafkaConsumer | None = None
        #: The group generation each partition was last placed in, and where it started there.
        self._placed: dict[str, tuple[int, int]] = {}
        #: Per partition, what the last read fetched past its hole: `(from, to, records)`, every
        #: record of [from, to). A later hole within it is served from it, so a compacted
        #: stretch costs one read, not one per hole.
        self._read_ahead: dict[str, tuple[int, int, list[ConsumerRecord]]] = {}

    async def complete(self, events: Sequence[EventT[Any]]) -> list[EventT[Any]]:
        """`events` with what is missing before each put back in its place. Events of a
        partition whose hole could not be read back in full are left out (unacked): the next
        batch reads on from where this one stopped."""
        await self._place([event.message for event in events])
        out: list[EventT[Any]] = []
        #: Next offset per "topic:partition" once the batch has been through it.
        ahead: dict[str, int] = {}
        deferred: set[str] = set()
        applied = self.applied()
        for event in events:
            msg = event.message
            key = partition_key(msg.topic, msg.partition)
            if key in deferred:
                continue
            if self.topics is not None and msg.topic not in self.topics:
                out.append(event)
                continue
            expected = ahead.get(key)
            if expected is None:
                expected = max(applied.get(key, 0), self._placed[key][1])
            if msg.offset > expected:
                filled, reached = await self._read(msg.topic, msg.partition, expected, msg.offset)
                out += filled
                if not reached:
                    deferred.add(key)
                    continue
            out.append(event)
            ahead[key] = max(expected, msg.offset + 1)
        return out

    async def _place(self, messages: Sequence[Any]) -> None:
        """Where each partition first seen in this group generation starts: where the role's
        offsets left it, unless the group committed more than one record past that (another
        process read on meanwhile: what it read is its own); with no offsets of the role's,
        the group's committed offset, else the partition's first record.

        One record past the role's offsets is not another process's: faust itself commits one
        record past a record its stream skipped (see the module's text)."""
        generation = self.app.consumer_generation_id
        unplaced = {
            partition_key(m.topic, m.partition): TopicPartition(m.topic, m.partition)
            for m in messages
            if (self.topics is None or m.topic in self.topics)
            and self._placed.get(partition_key(m.topic, m.partition), (None, 0))[0] != generation
        }
        if not unplaced:
            return
        committed = await self._committed(list(unplaced.values()))
        applied = self.applied()
        for key, tp in unplaced.items():
            group = committed.get(tp)
            start = applied.get(key)
            if start is None:
                start = group if group is not None else await self._beginning(tp)
            elif group is not None and group > start + 1:
                start = group
            self._placed[key] = (generation, start)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    # -- reading around the group ---------------------------------------------------------

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self.clients.aiokafka,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def _committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets of `tps` (those it committed)."""
        admin = AIOKafkaAdminClient(**self.clients.aiokafka_admin)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.app.conf.id, partitions=tps)
        finally:
            await admin.close()
        return {tp: int(meta.offset) for tp, meta in offsets.items() if meta.offset >= 0}

    async def _beginning(self, tp: TopicPartition) -> int:
        consumer = await self._client()
        return int((await consumer.beginning_offsets([tp]))[tp])

    async def _read(self, topic: str, partition: int, start: int, end: int) -> tuple[list[EventT[Any]], bool]:
        """The records of `topic`/`partition` from `start` up to (not with) `end`, at most
        `READ_LIMIT`, as events of the agent's stream; and whether nothing before `end` is left
        (offsets without a record, such as compacted ones, are passed over)."""
        key = partition_key(topic, partition)
        span = self._read_ahead.get(key)
        if span is not None and span[0] <= start and end <= span[1]:
            fetched, position = span[2], span[1]
        else:
            fetched, position = await self._fetch(TopicPartition(topic, partition), start, end)
        records = [r for r in fetched if start <= r.offset < end]
        self._read_ahead[key] = (end, position, [r for r in fetched if r.offset >= end])
        reached = position >= end
        if records or not reached:
            rest = "" if reached else ", the rest with the next batch"
            log.warning(
                "%s: the stream skipped %s:%d offsets %d-%d; read %d record(s) back%s",
                self.role, topic, partition, start, end - 1, len(records), rest,
            )  # fmt: skip
        self.metrics.records_read_back.labels(topic, self.role).inc(len(records))
        return [self._event(r) for r in records], reached

    async def _fetch(self, tp: TopicPartition, start: int, end: int) -> tuple[list[ConsumerRecord], int]:
        """Records of `tp` from `start` on, through `end` where the limits allow; and the offset
        read up to (every record before it is in the list)."""
        consumer = await self._client()
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[ConsumerRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_TIMEOUT_S
        position = start
        while len(records) < READ_LIMIT and loop.time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=READ_LIMIT - len(records))
            records += batch.get(tp, [])
            position = await consumer.position(tp)
            if position >= end:
                break
        return records, position

    def _event(self, record: ConsumerRecord) -> EventT[Any]:
        message = ConsumerMessage(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp / 1000.0,
            record.timestamp_type,
            record.headers,
            record.key,
            record.value,
            record.checksum,
            record.serialized_key_size,
            record.serialized_value_size,
            TP(record.topic, record.partition),
            generation_id=self.app.consumer_generation_id,
        )
        # Acked through the app's consumer, like the stream's own: its commits close over it.
        return faust.Event(self.app, record.key, record.value, record.headers, message)
