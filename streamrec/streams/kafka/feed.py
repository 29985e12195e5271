"""A global feed: every partition of some topics, read outside any consumer group.

Each recommender needs every item vector, whichever partitions of the user topics
it owns: like a faust GlobalTable, but handing batches of raw records to a handler
that keeps them in whatever structure it needs (a matrix, not a dict of bytes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from mode import Service

from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.consumer import tp_key
from streamrec.streams.kafka.fetch import fetch
from streamrec.streams.telemetry import Metrics

__all__ = ["GlobalFeed"]

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]


class GlobalFeed(Service):
    """Reads `topics` from the beginning, then follows them, calling `handler` per batch.

    `caught_up` is set once the feed has read everything that existed when it started,
    so a worker can report ready only with a complete index.
    """

    def __init__(
        self,
        topics: Sequence[str],
        handler: Handler,
        clients: KafkaClients,
        metrics: Metrics,
        role: str,
        max_records: int = 5000,
        resume_from: Callable[[], dict[str, int]] | None = None,
        **kwargs: Any,
    ) -> None:
        self.topics = list(topics)
        #: Offsets ("topic:partition" -> next offset) to resume from; others start at the beginning.
        self.resume_from = resume_from
        self.handler = handler
        self.clients = clients
        self.metrics = metrics
        self.role = role
        self.max_records = max_records
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        #: Asks the partitions' end offsets, on a connection of its own: a broker answers a
        #: connection's requests in order, so on the reading consumer's the question waits behind
        #: a fetch held up to `fetch_max_wait_ms` (half a second by default) when nothing is new.
        self._offsets: AIOKafkaConsumer | None = None
        self._targets: dict[TopicPartition, int] = {}
        #: Next offset per partition whose records the handler has finished with.
        self._handled: dict[TopicPartition, int] = {}
        #: Offsets to go back to before the next batch (`rewind`).
        self._rewind: dict[TopicPartition, int] = {}
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **self.clients.aiokafka,
        )
        await consumer.start()
        partitions = []
        loop = asyncio.get_running_loop()
        for topic in self.topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:  # created after the consumer read the cluster's metadata
                ids = await loop.run_in_executor(None, self.clients.partitions, topic)
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        self._offsets = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.clients.aiokafka)
        await self._offsets.start()
        self._targets = {
            tp: off for tp, off in (await self._offsets.end_offsets(partitions)).items() if off > 0
        }
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        resume = self.resume_from() if self.resume_from is not None else {}
        for tp in partitions:
            offset = resume.get(tp_key(tp))
            if offset is not None:
                consumer.seek(tp, offset)
        self._consumer = consumer
        if not self._targets:
            self.caught_up.set()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None

    @Service.task
    async def _follow(self) -> None:
        while not self.should_stop:
            consumer = self._consumer
            if consumer is None:
                await asyncio.sleep(0.05)
                continue
            batches = await fetch(consumer, 100, self.max_records, self.metrics, "feed_fetch")
            if self._rewind:  # what was fetched before the rewind is read again from there
                for tp, offset in self._rewind.items():
                    consumer.seek(tp, offset)
                self._rewind = {}
                continue
            records = [r for batch in batches.values() for r in batch]
            if records:
                await self.handler(records)
                for tp, batch in batches.items():
                    self.metrics.events_consumed.labels(tp.topic, self.role).inc(len(batch))
                # A fetch from records already buffered returns without suspending: without
                # this, a burst of vectors is applied batch after batch while events wait.
                await asyncio.sleep(0)
            # Positions only move in getmany, so they now count handled records alone.
            positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
            if not self._rewind:
                self._handled.update(positions)
            if not self.caught_up.is_set():
                done = [tp for tp, end in self._targets.items() if self._handled.get(tp, 0) >= end]
                for tp in done:
                    del self._targets[tp]
                if not self._targets:
                    log.info("global feed caught up on %s", ", ".join(self.topics))
                    self.caught_up.set()

    @property
    def behind(self) -> int:
        """Records still to read of what existed when the feed started (0 once caught up)."""
        if self.caught_up.is_set():
            return 0
        return sum(max(0, end - self._handled.get(tp, 0)) for tp, end in self._targets.items())

    @property
    def reading(self) -> bool:
        """Whether the feed is started (and not stopped)."""
        return self._consumer is not None

    def rewind(self, offsets: dict[str, int]) -> None:
        """Read again from `offsets` ("topic:partition" -> next offset; others from the beginning):
        the handler's state went back to a checkpoint taken there. From the next batch on."""
        consumer = self._consumer
        if consumer is None:
            return
        self._rewind = {tp: offsets.get(tp_key(tp), 0) for tp in consumer.assignment()}
        self._handled.update(self._rewind)

    async def catch_up(self, timeout: float = 5.0) -> bool:
        """Wait until everything currently in the topics has been handled; False on timeout
        (a feed not yet started or restarting is waited for within the same time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._consumer is None or self._offsets is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        ends = await self._offsets.end_offsets(list(self._consumer.assignment()))
        while loop.time() < deadline:
            if all(self._handled.get(tp, 0) >= end for tp, end in ends.items()):
                return True
            await asyncio.sleep(0.01)
        log.debug("%s did not catch up within %.1fs", ", ".join(self.topics), timeout)
        return False
