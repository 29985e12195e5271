"""A consumer group member whose position is its role's checkpoint, not the group's commits alone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from streamrec.model.events.offsets import partition_key
from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.fetch import fetch
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics

__all__ = ["CheckpointedConsumer", "own_group", "tp_key"]

log = logging.getLogger(__name__)


def own_group(settings: Settings, role: str) -> str:
    """The consumer group of a role that reads through a `CheckpointedConsumer` (cf, encoder)."""
    return settings.topic(f"streamrec-{role}")


def tp_key(tp: TopicPartition) -> str:
    """The key a checkpoint keeps a partition's offset under (`partition_key`)."""
    return partition_key(tp.topic, tp.partition)


class CheckpointedConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads `topics` in a consumer group, resuming each partition where the checkpoint stopped.

    When partitions are assigned (a start, a rebalance) the role says where each one starts
    (`on_assigned`: its checkpoint's offsets, or where the group's log says the last valid commit
    left it), and it is sought there unless the group has committed further on; before they are
    revoked the role checkpoints (`on_revoked`), so that the next owner starts where this one
    stopped. Offsets are committed only from a checkpoint (`commit`).

    Parameters
    ----------
    clients, settings
        How to reach Kafka, and the group's session timeout.
    group
        The consumer group.
    topics
        What to read.
    on_assigned
        Called with the partitions at each assignment, before any is read; returns where to start
        ("topic:partition" -> next offset).
    on_revoked
        Makes what was learned from the partitions durable before they go.
    metrics, role
        For retries and lag.
    """

    def __init__(
        self,
        clients: KafkaClients,
        settings: Settings,
        group: str,
        topics: Sequence[str],
        on_assigned: Callable[[list[TopicPartition]], Awaitable[dict[str, int]]],
        on_revoked: Callable[[], Awaitable[None]],
        metrics: Metrics,
        role: str,
    ) -> None:
        self.clients = clients
        self.settings = settings
        self.group = group
        self.topics = list(topics)
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.metrics = metrics
        self.role = role
        #: Whether the group has given this member its partitions (and they were sought).
        self.assigned = False
        self._consumer: AIOKafkaConsumer | None = None
        #: Where each partition of the current assignment started (None: the topic's beginning).
        self._starts: dict[TopicPartition, int | None] = {}
        #: How many assignments have been taken: a batch fetched under an earlier one is stale.
        self.generation = 0

    async def start(self) -> None:
        timeout = self.settings.kafka_session_timeout_s
        consumer = AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(timeout * 1000),
            heartbeat_interval_ms=int(max(500, timeout * 100)),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.clients.aiokafka,
        )
        await consumer.start()
        consumer.subscribe(self.topics, listener=self)
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def restart_assignment(self) -> None:
        """Read every assigned partition again from where this assignment started it (what was
        fetched since is dropped by the caller)."""
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            if tp not in self._starts:
                continue  # of an assignment still being taken: its callback places it
            start = self._starts[tp]
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)

    def seek(self, offsets: dict[TopicPartition, int]) -> None:
        """Read these assigned partitions again from these offsets (what was fetched past them is
        dropped by the caller)."""
        consumer = self._consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        for tp, offset in offsets.items():
            if tp in assigned:
                consumer.seek(tp, offset)

    async def rejoin(self) -> None:
        """Leave the group and join it again, as a new member (after being fenced)."""
        await self.stop()
        self.assigned = False
        await self.start()

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def fetch(
        self, window_ms: int, max_records: int, wait_ms: int = 200
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """A batch: what arrives within `window_ms` of the first record (waited for up to
        `wait_ms`), at most `max_records`, each partition's records in order."""
        consumer = self._consumer
        if consumer is None:
            return {}
        operation = f"{self.role}_fetch"
        batches = await fetch(consumer, wait_ms, max_records, self.metrics, operation)
        n = sum(map(len, batches.values()))
        deadline = time.monotonic() + window_ms / 1000
        while batches and n < max_records and (left := deadline - time.monotonic()) > 0:
            more = await fetch(consumer, max(1, int(left * 1000)), max_records - n, self.metrics, operation)
            for tp, records in more.items():
                batches.setdefault(tp, []).extend(records)
                n += len(records)
        return batches

    async def run(
        self,
        lock: asyncio.Lock,
        apply: Callable[[list[ConsumerRecord]], Awaitable[None]],
        after: Callable[[], Awaitable[None]],
        window_ms: int,
        max_records: int,
        stopping: Callable[[], bool],
    ) -> None:
        """A role's reading loop, until `stopping()`: each batch (`fetch`) applied under `lock`,
        then `after` (the role's checkpoint, when one is due) under it too. A batch fetched across
        a rebalance is dropped, and the partitions are read again from where the new assignment
        starts them."""
        while not stopping():
            if self._consumer is None:
                await asyncio.sleep(0.05)
                continue
            generation = self.generation
            batches = await self.fetch(window_ms, max_records)
            async with lock:
                if generation != self.generation:
                    await self.restart_assignment()
                    continue
                records = [record for part in batches.values() for record in part]
                if records:
                    await apply(records)
                await after()

    async def commit(self, offsets: dict[str, int]) -> bool:
        """Commit the checkpoint's offsets of the partitions this member holds; False if the group
        refused them (a rebalance came between): the checkpoint holds them, so a restart resumes
        there regardless, and the caller commits again with its next checkpoint."""
        consumer = self._consumer
        if consumer is None:
            return True
        commit = {
            tp: OffsetAndMetadata(offsets[tp_key(tp)], "")
            for tp in consumer.assignment()
            if tp_key(tp) in offsets
        }
        if not commit:
            return True
        try:
            await consumer.commit(commit)
        except KafkaError as exc:
            self.metrics.retries.labels(f"{self.role}_commit").inc()
            log.warning("commit failed (the checkpoint is saved; committed again with the next): %s", exc)
            return False
        return True

    async def report_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            lag = max(0, highwater - position)
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition), self.role).set(lag)

    # -- the group's rebalance listener ---------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Hand partitions over with everything learned from them saved and committed.
        self._starts = {}
        await self.on_revoked()
        self.assigned = False

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is not None and assigned:
            committed = {tp: await consumer.committed(tp) for tp in assigned}
            saved_offsets = await self.on_assigned(list(assigned))
            # From here to the new generation, no await: a batch fetched before sees it changed.
            starts: dict[TopicPartition, int | None] = {}
            for tp in assigned:
                saved, done = saved_offsets.get(tp_key(tp)), committed[tp]
                starts[tp] = done
                if saved is not None and (done is None or saved > done):
                    starts[tp] = saved
                if starts[tp] is not None:
                    consumer.seek(tp, starts[tp])
                log.info("assigned %s: start at %s, group committed %s", tp_key(tp), saved, done)
            self._starts = starts
        self.generation += 1
        self.assigned = True
