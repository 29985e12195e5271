"""Reading the catalog and the reviews on the topics again, under a new encoder.

When the encoder role starts with an encoder other than the one its checkpoint was written
with (a new model path, a `streamrec finetune` output), the text vectors on the topics are of
the old encoder. The role goes on encoding what arrives with the new one, and this task reads
what came before (the latest message of each item on `items`, every review still on `reviews`)
and encodes it again, while the recommenders keep serving the old vectors. Then it marks every
partition of `vectors` and `reviews-encoded` with the new version (`version_marker`): a
recommender that has read the marker on each holds the new version whole, and switches to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Item, Review, Trigger
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.reader import ReviewReader
from streamrec.model.users.forgotten import Forgotten
from streamrec.streams.context import Context
from streamrec.streams.kafka.fetch import fetch
from streamrec.streams.messages import encoded_review, review_key, vector_key, vector_message, version_marker

__all__ = ["Reencoding"]

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log.
LOG_EVERY_S = 5.0
#: Fetches in a row that bring nothing, after which what is left to read is taken as gone.
IDLE_FETCHES = 25


class EncoderRole(Protocol):
    """What this task uses of the encoder role."""

    ctx: Context
    encoder: TransformerEncoder
    reader: ReviewReader
    lock: asyncio.Lock

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def partitions(self, topic: str) -> int: ...

    def reencoded(self, version: str) -> None: ...


class Reencoding:
    """Encodes the catalog and the reviews on the topics again with the role's encoder.

    Parameters
    ----------
    role
        The encoder role: its encoder, reader, lock and outputs.
    fresh
        The role has no checkpoint: read again only if the topics hold vectors already (a
        deployment whose encoder state was lost), not on a first start.
    """

    def __init__(self, role: EncoderRole, fresh: bool = False) -> None:
        self.role = role
        self.fresh = fresh
        self.version = role.encoder.version
        #: Items the role encoded from its inputs since this started: their latest text is already sent.
        self.touched: set[str] = set()
        self.items = 0
        self.reviews = 0
        #: Users who asked to be forgotten, and when: their reviews written before stay out.
        self.forgotten = Forgotten()
        self._done = 0
        self._total = 0
        self._logged = 0.0

    async def run(self) -> None:
        ctx = self.role.ctx
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **ctx.clients.aiokafka)
        await consumer.start()
        try:
            if self.fresh and not await self._has_vectors(consumer):
                self.role.reencoded(self.version)
                return
            ends = await self._ends(consumer, [ctx.topics.items, ctx.topics.reviews])
            # Users forgotten: their reviews, still on `reviews` (the producers' topic), stay out.
            forgets = await self._ends(consumer, [ctx.topics.forget])
            await self._read(consumer, forgets, self._keep_forgotten, progress=False)
            self._total = sum(ends.values())
            log.info(
                "re-encoding %d catalog and review message(s) on the topics with encoder %s",
                self._total, self.version,
            )  # fmt: skip
            latest: dict[str, bytes | None] = {}

            async def keep(records: Sequence[ConsumerRecord]) -> None:
                for record in records:
                    if record.key:
                        latest[record.key.decode("utf-8", "replace")] = record.value
                        continue
                    try:  # a message without a key: its value names the item
                        latest[ctx.parser.item(record.value).item_id] = record.value
                    except InvalidEvent:
                        continue

            await self._read(
                consumer, {tp: e for tp, e in ends.items() if tp.topic == ctx.topics.items}, keep
            )
            await self._encode_items(latest)
            reviews = {tp: e for tp, e in ends.items() if tp.topic == ctx.topics.reviews}
            await self._read(consumer, reviews, self._encode_reviews)
            await self._mark()
        finally:
            await consumer.stop()
        ctx.metrics.reencode_progress.labels("encoder").set(1.0)
        log.info(
            "re-encoding done: %d item(s) and %d review(s) under encoder %s",
            self.items,
            self.reviews,
            self.version,
        )
        self.role.reencoded(self.version)

    async def _keep_forgotten(self, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            try:
                user = self.role.ctx.parser.forget(record.value).user_id
            except InvalidEvent:
                continue
            self.forgotten.mark(user, at=record.timestamp / 1000)

    async def _has_vectors(self, consumer: AIOKafkaConsumer) -> bool:
        ends = await self._ends(consumer, [self.role.ctx.topics.vectors])
        return any(ends.values())

    async def _ends(self, consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[TopicPartition, int]:
        clients = self.role.ctx.clients
        loop = asyncio.get_running_loop()
        partitions = []
        for topic in topics:
            ids = await loop.run_in_executor(None, clients.partitions, topic)
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        ends: dict[TopicPartition, int],
        handle: Callable[[Sequence[ConsumerRecord]], Awaitable[None]],
        progress: bool = True,
    ) -> None:
        """Hand `handle` every record below `ends` (what was there when this started), in batches;
        `progress`: they count in the progress shown."""
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        if not wanted:
            return
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        metrics = self.role.ctx.metrics
        batch_size = self.role.ctx.settings.encoder.batch_size
        fetched: set[TopicPartition] = set()
        idle = 0
        while wanted:
            batches = await fetch(consumer, 200, batch_size, metrics, "reencode_fetch")
            idle = 0 if batches else idle + 1
            records = []
            for tp, batch in batches.items():
                end = wanted.get(tp)
                if end is None:
                    continue
                if tp not in fetched:
                    # The high watermark of the first fetch: some Kafka-compatible brokers answer
                    # a list-offsets request with the start of the last batch, not the end.
                    fetched.add(tp)
                    high = consumer.highwater(tp)
                    if high is not None and high > end:
                        self._total += high - end
                        end = wanted[tp] = high
                records += [r for r in batch if r.offset < end]
            for tp in list(wanted):
                # Read to its end; or nothing more comes (its tail compacted away, or deleted).
                if await consumer.position(tp) >= wanted[tp] or idle >= IDLE_FETCHES:
                    del wanted[tp]
                    consumer.pause(tp)
            if records:
                await handle(records)
                if progress:
                    self._progress(len(records))

    def _progress(self, n: int) -> None:
        self._done += n
        share = self._done / max(1, self._total)
        self.role.ctx.metrics.reencode_progress.labels("encoder").set(min(share, 0.999))
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.info("re-encoding with %s: %.0f%% of %d message(s)", self.version, 100 * share, self._total)

    async def _encode_items(self, latest: dict[str, bytes | None]) -> None:
        """The latest text of each item on sale, in batches; items the role has encoded since this
        started, off sale or deleted are passed over (their state on `vectors` is current)."""
        role = self.role
        parser = role.ctx.parser
        todo: list[Item] = []
        for item_id, raw in latest.items():
            if raw is None or item_id in self.touched:
                continue
            try:
                item = parser.item(raw)
            except InvalidEvent:
                continue
            if item.available and item.text() != item_id:
                todo.append(item)
        size = role.ctx.settings.encoder.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            async with role.lock:
                chunk = [item for item in chunk if item.item_id not in self.touched]
                vectors = await role.run(role.encoder.encode, [item.text() for item in chunk])
                for item, vector in zip(chunk, vectors, strict=True):
                    message = vector_message(
                        "item",
                        "text",
                        item.item_id,
                        vector,
                        self.version,
                        item.ts,
                        title=item.title,
                        tags=item.tags,
                    )
                    role.ctx.output.send(
                        role.ctx.topics.vectors, message, key=vector_key("item", "text", item.item_id)
                    )
                await role.ctx.output.flush()
            self.items += len(chunk)

    async def _encode_reviews(self, records: Sequence[ConsumerRecord]) -> None:
        """Reviews read again: vectors of the new encoder, polarities of its sentiment head (which
        learns their ratings anew), each marked as read again."""
        role = self.role
        ctx = role.ctx
        reviews: list[tuple[Review, ConsumerRecord]] = []
        for record in records:
            if record.value is None:
                continue
            try:
                review = ctx.parser.review(record.value)
            except InvalidEvent:
                continue
            if self.forgotten.covers(review.user_id, record.timestamp / 1000):
                continue  # written before its author asked to be forgotten
            reviews.append((review, record))
        if not reviews:
            return
        async with role.lock:
            passages = await role.run(role.reader.encode, [review.text for review, _ in reviews])
            partitions = role.partitions(ctx.topics.reviews_encoded)
            for (review, record), passage in zip(reviews, passages, strict=True):
                reading = role.reader.judge(passage, review.rating)
                role.reader.learn(passage, review.rating)
                ts = record.timestamp / 1000
                trigger = Trigger(topic=record.topic, partition=record.partition, offset=record.offset, ts=ts)
                ctx.output.send(
                    ctx.topics.reviews_encoded,
                    encoded_review(review, reading, self.version, trigger, reencoded=True),
                    key=review_key(review),
                    partition=record.partition % partitions,
                    timestamp_ms=record.timestamp,
                )
            await ctx.output.flush()
        self.reviews += len(reviews)

    async def _mark(self) -> None:
        """The version marker on every partition of both vector topics, after all that came before."""
        ctx = self.role.ctx
        marker = version_marker(self.version, self.role.encoder.dim, self.items, self.reviews, time.time())
        for topic in (ctx.topics.vectors, ctx.topics.reviews_encoded):
            for partition in range(self.role.partitions(topic)):
                key = vector_key("encoder", "version", str(partition))
                ctx.output.send(topic, marker, key=key, partition=partition)
        await ctx.output.flush()
