"""The encoder role: turns item text into vectors, and reads reviews, in micro-batches.

Items are stateless: their vectors go to the compacted `vectors` topic. Reviews are read by
`streamrec.model.text.reader.ReviewReader` (one encoder pass each: the review's vector, its
polarity, its opinions) and go to `reviews-encoded`, into the same partition as the source
review so that a user's clicks and reviews stay together whatever partitioner the producer
used. The role is the one writer of the sentiment model: it learns from each rated review
after reading it, and checkpoints the model with the offsets it has read up to. Readings use
the model of the last checkpoint, so a restarted role reads every review it reads again as it
read it the first time, and every recommender reads the polarities published here.
It scales by adding processes (each learns from the partitions it reads) and can run alone on a
GPU machine: it only needs Kafka.

The role reads `items` and `reviews` in batches through its own consumer group
(`streamrec.streams.kafka.consumer.CheckpointedConsumer`), as the CF role does: each partition is
read in order from where the checkpoint stopped, nothing skipped, and offsets are committed only
once a checkpoint that covers them is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from mode import Service

from streamrec.model.errors import InvalidEvent, StreamrecError
from streamrec.model.events.offsets import partition_key
from streamrec.model.events.schemas import Item, Review, Trigger
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.images import ImageEncoder
from streamrec.model.text.reader import Passage, ReviewReader
from streamrec.streams.context import Context
from streamrec.streams.kafka.checkpoint import CheckpointStore, CheckpointWriter
from streamrec.streams.kafka.consumer import CheckpointedConsumer, own_group, tp_key
from streamrec.streams.messages import (
    encoded_review,
    review_key,
)
from streamrec.streams.roles.encoder.catalog import CatalogOutputs
from streamrec.streams.roles.encoder.reencode import Reencoding

__all__ = ["EncoderRole"]

log = logging.getLogger(__name__)
ROLE = "encoder"
#: Seconds before a failed re-encoding starts again.
REENCODE_RETRY_S = 5.0


class EncoderRole(CatalogOutputs, Service):
    """Owns the text encoder, the review reader and its sentiment model, and dead letters of `items`."""

    def __init__(self, ctx: Context, encoder: TransformerEncoder | None = None, **kwargs: Any) -> None:
        self.ctx = ctx
        cfg = ctx.settings.encoder
        self.encoder = encoder or TransformerEncoder(
            model=cfg.model,
            device=cfg.device,
            dtype=cfg.dtype,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
            backend=cfg.backend,
            num_threads=cfg.threads or None,
            export_dir=ctx.settings.data_dir / "onnx",
        )
        self.encoder.warm_up()
        enc = self.encoder
        log.info("encoder %s on %s with %s (%d dims)", enc.version, enc.device, enc.backend, enc.dim)
        self.reader = ReviewReader(self.encoder, ctx.settings.aspects())
        #: Embeds items' pictures, when the deployment names an image model.
        self.images: ImageEncoder | None = None
        if ctx.settings.image_model is not None:
            self.images = ImageEncoder(ctx.settings.image_model, cfg.device, cfg.batch_size)
            declared = ctx.settings.modalities["image"]
            if self.images.dim != declared:
                raise StreamrecError(
                    f"the image model writes {self.images.dim} numbers, but modalities declares image as "
                    f'{declared}: declare {{"image": {self.images.dim}}}'
                )
            log.info("image model %s (%d dims)", self.images.version, self.images.dim)
        self.store = CheckpointStore.claim(ctx.settings, ROLE)
        saved = self.store.load()
        #: Next offset to read per "topic:partition": below it, a message was read and sent.
        self.offsets: dict[str, int] = {}
        version = enc.version
        #: The encoder version the vectors on the topics are all of (the catalog and reviews read).
        self.encoded_version = version
        self.reencoding: Reencoding | None = None
        if saved is not None:
            self.offsets = saved.offsets
            self.encoded_version = saved.model.get("version", version)
            # The sentiment head reads one encoder's space: restored only for the encoder it read
            # (a re-encoding cut short, or rolled back, learns it again from every review).
            reader_for = saved.model.get("reader_version", self.encoded_version)
            if self.encoded_version == version and reader_for == version:
                self.reader.restore(saved.model["reader"])
            else:
                log.info(
                    "encoder changed from %s to %s: reading the topics again", self.encoded_version, version
                )
                self.reencoding = Reencoding(self)
        else:
            self.reencoding = Reencoding(self, fresh=True)
        self.acks = CheckpointWriter(self.store)
        self._version_unsaved = False
        self.lock = asyncio.Lock()
        self._last_checkpoint = time.monotonic()
        # One thread: the model is not re-entrant, and torch parallelizes inside a batch.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        self._partitions: dict[str, int] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._closing = False
        topics = ctx.topics
        self.consumer = CheckpointedConsumer(
            ctx.clients,
            ctx.settings,
            own_group(ctx.settings, ROLE),
            [topics.items, topics.reviews],
            on_assigned=self._on_assigned,
            on_revoked=self._hand_over,
            metrics=ctx.metrics,
            role=ROLE,
        )
        super().__init__(**kwargs)

    def partitions(self, topic: str) -> int:
        """Partition count of an output topic (it may differ from the input's, if created elsewhere)."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(self.ctx.clients.partitions(topic))
        return count

    def install(self, app: Any) -> None:
        app.service(self)
        self.ctx.ready_checks[ROLE] = lambda: self.consumer.assigned

    async def on_start(self) -> None:
        self.ctx.metrics.text_version.labels(ROLE, self.encoder.version).set(1)
        self.ctx.metrics.reencode_progress.labels(ROLE).set(0.0 if self.reencoding else 1.0)
        self._start_reencoding()
        if self.offsets and self.reencoding is None:  # logged here: logging is set up once the worker starts
            head = self.reader.sentiment
            log.info(
                "sentiment model restored (%d positive, %d negative reviews learned)",
                head.n_positive,
                head.n_negative,
            )
        await self.consumer.start()

    def _start_reencoding(self) -> None:
        if self.reencoding is not None and not self._closing:
            task = asyncio.ensure_future(self.reencoding.run())
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closing:
            exc = task.exception()
            log.error(
                "re-encoding failed, starting it again in %.0f s: %s", REENCODE_RETRY_S, exc, exc_info=exc
            )
            fresh = self.reencoding is not None and self.reencoding.fresh
            self.reencoding = Reencoding(self, fresh=fresh)
            asyncio.get_running_loop().call_later(REENCODE_RETRY_S, self._start_reencoding)

    def reencoded(self, version: str) -> None:
        """Everything on the topics is encoded under `version`: the next checkpoint says so."""
        self.encoded_version = version
        self.reencoding = None
        self._version_unsaved = True

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the encoder's thread (the model is not re-entrant)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def on_stop(self) -> None:
        self._closing = True
        for task in list(self._running):
            task.cancel()  # what it sent is sent again at the next start
        if self.consumer.started:
            await self._hand_over()
            await self.consumer.stop()

    # -- consuming ------------------------------------------------------------------

    async def _on_assigned(self, assigned: list[TopicPartition]) -> dict[str, int]:
        """Each assigned partition starts where this role's checkpoint stopped reading it."""
        async with self.lock:
            keys = [tp_key(tp) for tp in assigned]
            return {key: self.offsets[key] for key in keys if key in self.offsets}

    async def _hand_over(self) -> None:
        """Everything read so far checkpointed and committed (before partitions go, or a stop)."""
        async with self.lock:
            await self._checkpoint()
        await self.acks.drain()

    @Service.task
    async def _consume(self) -> None:
        cfg = self.ctx.settings.encoder
        await self.consumer.run(
            self.lock,
            self.handle,
            self._checkpoint_due,
            cfg.max_wait_ms,
            cfg.batch_size,
            lambda: self.should_stop,
        )

    @Service.timer(5.0)
    async def _lag(self) -> None:
        await self.consumer.report_lag()

    @Service.timer(1.0)
    async def _periodic(self) -> None:
        await self._on_timer()

    def _fresh(self, record: ConsumerRecord) -> bool:
        """Move past a message; False if it was read (and sent) before the last checkpoint."""
        tp = partition_key(record.topic, record.partition)
        done = self.offsets.get(tp, 0)
        self.offsets[tp] = max(done, record.offset + 1)
        self.acks.changed()
        return bool(record.offset >= done)

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Encode a batch (each partition's messages in order) and send what it gives."""
        ctx = self.ctx
        started = time.perf_counter()
        items: list[tuple[Item, ConsumerRecord]] = []
        reviews: list[tuple[Review, ConsumerRecord]] = []
        #: Items off sale, or on sale with nothing to encode: (id, available, reason, record, tags).
        states: list[tuple[str, bool, str, ConsumerRecord, list[str]]] = []
        #: Items whose picture the image model embeds.
        pictures: list[tuple[Item, ConsumerRecord]] = []
        #: The latest catalog message of each item in the batch (None: a tombstone): what the
        #: compacted `vectors` must end on, whatever came before it in the batch.
        catalog: dict[str, tuple[Item | None, ConsumerRecord]] = {}
        for record in records:
            ctx.metrics.events_consumed.labels(record.topic, ROLE).inc()
            if not self._fresh(record):
                ctx.metrics.duplicates.labels(record.topic, ROLE).inc()
                continue
            if record.topic == ctx.topics.items:
                if record.value is None:
                    # A tombstone: the catalog entry was deleted.
                    if record.key:
                        catalog[record.key.decode("utf-8", "replace")] = (None, record)
                    continue
                try:
                    item = ctx.parser.item(record.value)
                except InvalidEvent as exc:
                    ctx.deadletters.send(
                        record.topic, record.partition, record.offset, exc, record.value, record.key
                    )
                    continue
                catalog.pop(item.item_id, None)  # the latest message of an item, last in order
                catalog[item.item_id] = (item, record)
            else:
                try:
                    reviews.append((ctx.parser.review(record.value), record))
                except InvalidEvent:
                    continue  # the CF role dead-letters invalid reviews
        if self.reencoding is not None:
            self.reencoding.touched.update(catalog)  # sent here: newer than what it reads again
        for item_id, (entry, record) in catalog.items():
            if entry is None:
                states.append((item_id, False, "deleted", record, []))
            elif not entry.available:
                # Off sale: its vectors stay where they are, for when it is back.
                states.append((item_id, False, "unavailable", record, []))
            else:
                self._send_modalities(entry, record)
                if self._pictured(entry):
                    pictures.append((entry, record))
                if entry.text() != item_id:
                    items.append((entry, record))
                else:
                    # A title that is the item's id says nothing (its reviews will describe it);
                    # that it is on sale still counts.
                    states.append((item_id, True, "available", record, entry.tags or []))
        if items or reviews:
            encode_started = time.perf_counter()
            vectors, passages = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._encode, [item.text() for item, _ in items], [r.text for r, _ in reviews]
            )
            ctx.metrics.encoder_batch_seconds.observe(time.perf_counter() - encode_started)
            ctx.metrics.encoder_batch_size.observe(len(items) + len(reviews))
            for kind, n in (("item", len(items)), ("review", len(reviews))):
                ctx.metrics.encoder_texts.labels(kind).inc(n)
                ctx.metrics.encoder_sequences.labels(kind).inc(n)
            self._send_items(items, vectors)
            self._send_reviews(reviews, passages)
        self._send_states(states)
        if pictures:
            await self._send_pictures(pictures)
        await ctx.output.flush()
        ctx.metrics.batch_events.labels(ROLE).observe(len(records))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def _encode(self, items: list[str], reviews: list[str]) -> tuple[Any, list[Passage]]:
        """Items' vectors, and reviews as one encoder pass each reads them."""
        return self.encoder.encode(items), self.reader.encode(reviews) if reviews else []

    def _send_reviews(self, reviews: list[tuple[Review, ConsumerRecord]], passages: list[Passage]) -> None:
        """Each review as read by the committed sentiment model; then its rating is learned."""
        ctx, version = self.ctx, self.encoder.version
        for (review, record), passage in zip(reviews, passages, strict=True):
            reading = self.reader.judge(passage, review.rating)
            self.reader.learn(passage, review.rating)
            trigger = Trigger(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                ts=record.timestamp / 1000,
            )
            ctx.output.send(
                ctx.topics.reviews_encoded,
                encoded_review(review, reading, version, trigger),
                key=review_key(review),
                partition=record.partition % self.partitions(ctx.topics.reviews_encoded),
                # Keeps the review's own timestamp, so latency is measured from the original event.
                timestamp_ms=record.timestamp,
            )

    # -- checkpoints ----------------------------------------------------------------

    async def _on_timer(self) -> None:
        async with self.lock:
            await self._checkpoint_due()

    async def _checkpoint_due(self) -> None:
        """A checkpoint, if the last is the checkpoint interval old (under the lock)."""
        if time.monotonic() - self._last_checkpoint >= self.ctx.settings.encoder.checkpoint_interval_s:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """What was learned starts reading reviews, and becomes durable with the offsets read up to;
        those offsets are committed once it is on disk."""
        self._last_checkpoint = time.monotonic()
        if not self.acks.holding and not self._version_unsaved:
            return
        await self.ctx.output.flush()
        self.reader.commit()
        self._version_unsaved = False
        state = {
            "reader": self.reader.state(),
            "reader_version": self.encoder.version,
            "version": self.encoded_version,
        }
        offsets = dict(self.offsets)
        self.acks.write(self.store.dumps(state, offsets), landed=lambda: self.consumer.commit(offsets))
