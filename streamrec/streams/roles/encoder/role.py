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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
import numpy as np
from faust.streams import Stream
from faust.types import EventT, StreamT

from streamrec.model.errors import InvalidEvent, StreamrecError
from streamrec.model.events.offsets import partition_key
from streamrec.model.events.schemas import Item, Review, Trigger
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.images import ImageEncoder, ImageError, read_image
from streamrec.model.text.reader import Passage, ReviewReader
from streamrec.streams.context import Context
from streamrec.streams.kafka.checkpoint import AckAfterCheckpoint, CheckpointStore
from streamrec.streams.kafka.gapless import Gapless
from streamrec.streams.messages import (
    availability_message,
    encoded_review,
    review_key,
    vector_key,
    vector_message,
)
from streamrec.streams.roles.encoder.reencode import Reencoding

__all__ = ["EncoderRole"]

log = logging.getLogger(__name__)
ROLE = "encoder"
#: Seconds before a failed re-encoding starts again.
REENCODE_RETRY_S = 5.0


class EncoderRole:
    """Owns the text encoder, the review reader and its sentiment model, and dead letters of `items`."""

    def __init__(self, ctx: Context, encoder: TransformerEncoder | None = None) -> None:
        self.ctx = ctx
        cfg = ctx.settings.encoder
        self.encoder = encoder or TransformerEncoder(
            model=cfg.model,
            device=cfg.device,
            dtype=cfg.dtype,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
            backend=cfg.backend,
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
        #: Next review offset to read per "topic:partition": below it, a review was read and sent.
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
        self.acks = AckAfterCheckpoint(self.store)
        self._version_unsaved = False
        self.lock = asyncio.Lock()
        self._last_checkpoint = time.monotonic()
        # One thread: the model is not re-entrant, and torch parallelizes inside a batch.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        self._partitions: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def partitions(self, topic: str) -> int:
        """Partition count of an output topic (it may differ from the input's, if created elsewhere)."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(self.ctx.clients.partitions(topic))
        return count

    def install(self, app: faust.App) -> None:
        ctx = self.ctx
        source = app.topic(ctx.topics.items, ctx.topics.reviews, value_serializer="raw", key_serializer="raw")
        app.agent(source, name=f"{ctx.settings.topic_prefix}encoder")(self._agent)
        # Reviews only: a review is read once, by its offset; the catalog is read as upserts.
        self.gapless = Gapless(
            app, ctx.clients, ctx.metrics, ROLE, lambda: self.offsets, topics=[ctx.topics.reviews]
        )
        app.timer(1.0, name="encoder-checkpoint")(self._on_timer)
        ctx.sources.update({ctx.topics.items: ROLE, ctx.topics.reviews: ROLE})

    async def open(self) -> None:
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

    def _start_reencoding(self) -> None:
        if self.reencoding is not None and not self._closing:
            task = asyncio.ensure_future(self.reencoding.run())
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
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

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()  # what it sent is sent again at the next start
        await self._on_timer(force=True)
        await self.acks.drain()
        await self.gapless.close()

    async def _agent(self, stream: StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # StreamT does not declare the batching methods
        cfg = self.ctx.settings.encoder
        async for events in stream.noack_take(cfg.batch_size, within=cfg.max_wait_ms / 1000):
            async with self.lock:
                events = await self.gapless.complete(events)
                await self.handle(events)
                self.acks.hold(events)
                if time.monotonic() - self._last_checkpoint >= cfg.checkpoint_interval_s:
                    await self._checkpoint()

    def _fresh(self, event: EventT[Any]) -> bool:
        """Move past a review; False if it was read (and sent) before the last checkpoint."""
        msg = event.message
        tp = partition_key(msg.topic, msg.partition)
        done = self.offsets.get(tp, 0)
        self.offsets[tp] = max(done, msg.offset + 1)
        return msg.offset >= done

    async def handle(self, events: Sequence[EventT[Any]]) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        items: list[tuple[Item, EventT[Any]]] = []
        reviews: list[tuple[Review, EventT[Any]]] = []
        #: Items off sale, or on sale with nothing to encode: (id, available, reason, event, tags).
        states: list[tuple[str, bool, str, EventT[Any], list[str]]] = []
        #: Items whose picture the image model embeds.
        pictures: list[tuple[Item, EventT[Any]]] = []
        #: The latest catalog message of each item in the batch (None: a tombstone): what the
        #: compacted `vectors` must end on, whatever came before it in the batch.
        catalog: dict[str, tuple[Item | None, EventT[Any]]] = {}
        for event in events:
            msg = event.message
            ctx.metrics.events_consumed.labels(msg.topic, ROLE).inc()
            if msg.topic == ctx.topics.items:
                if event.value is None:
                    # A tombstone: the catalog entry was deleted.
                    if msg.key:
                        catalog[msg.key.decode("utf-8", "replace")] = (None, event)
                    continue
                try:
                    item = ctx.parser.item(event.value)
                except InvalidEvent as exc:
                    ctx.deadletters.send(msg.topic, msg.partition, msg.offset, exc, event.value, msg.key)
                    continue
                catalog.pop(item.item_id, None)  # the latest message of an item, last in order
                catalog[item.item_id] = (item, event)
            elif self._fresh(event):
                try:
                    reviews.append((ctx.parser.review(event.value), event))
                except InvalidEvent:
                    continue  # the CF role dead-letters invalid reviews
        if self.reencoding is not None:
            self.reencoding.touched.update(catalog)  # sent here: newer than what it reads again
        for item_id, (entry, event) in catalog.items():
            if entry is None:
                states.append((item_id, False, "deleted", event, []))
            elif not entry.available:
                # Off sale: its vectors stay where they are, for when it is back.
                states.append((item_id, False, "unavailable", event, []))
            else:
                self._send_modalities(entry, event)
                if self._pictured(entry):
                    pictures.append((entry, event))
                if entry.text() != item_id:
                    items.append((entry, event))
                else:
                    # A title that is the item's id says nothing (its reviews will describe it);
                    # that it is on sale still counts.
                    states.append((item_id, True, "available", event, entry.tags or []))
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
        ctx.metrics.batch_events.labels(ROLE).observe(len(events))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def _encode(self, items: list[str], reviews: list[str]) -> tuple[Any, list[Passage]]:
        """Items' vectors, and reviews as one encoder pass each reads them."""
        return self.encoder.encode(items), self.reader.encode(reviews) if reviews else []

    def _send_items(self, items: list[tuple[Item, EventT[Any]]], vectors: Any) -> None:
        ctx, version = self.ctx, self.encoder.version
        for (item, _), vector in zip(items, vectors, strict=True):
            message = vector_message(
                "item", "text", item.item_id, vector, version, item.ts, title=item.title, tags=item.tags
            )
            ctx.output.send(ctx.topics.vectors, message, key=vector_key("item", "text", item.item_id))

    def _pictured(self, item: Item) -> bool:
        """Whether the image model embeds this item's picture (the producer's own vector wins)."""
        return self.images is not None and item.image is not None and "image" not in (item.vectors or {})

    async def _send_pictures(self, pictures: list[tuple[Item, EventT[Any]]]) -> None:
        """Each picture read and embedded into the modality `image`; an unreadable one dead-lettered."""
        ctx, images = self.ctx, self.images
        assert images is not None

        def embed() -> tuple[list[int], Any, dict[int, ImageError]]:
            read, failed = [], {}
            for n, (item, _) in enumerate(pictures):
                try:
                    read.append((n, read_image(item.image or "")))
                except ImageError as exc:
                    failed[n] = exc
                except Exception as exc:  # noqa: BLE001 - one picture must not stop the role
                    failed[n] = ImageError(f"image could not be read: {type(exc).__name__}: {exc}")
            vectors = images.encode([picture for _, picture in read]) if read else None
            return [n for n, _ in read], vectors, failed

        ok, vectors, failed = await asyncio.get_running_loop().run_in_executor(self._pool, embed)
        for n, exc in failed.items():
            msg = pictures[n][1].message
            error = InvalidEvent("invalid_image", str(exc))
            ctx.deadletters.send(msg.topic, msg.partition, msg.offset, error, pictures[n][1].value, msg.key)
        for row, n in enumerate(ok):
            item = pictures[n][0]
            message = vector_message("item", "image", item.item_id, vectors[row], images.version, item.ts)
            ctx.output.send(ctx.topics.vectors, message, key=vector_key("item", "image", item.item_id))
        ctx.metrics.encoder_texts.labels("image").inc(len(ok))

    def _send_modalities(self, item: Item, event: EventT[Any]) -> None:
        """The producer's vectors of other modalities, as given (validated by the parser); a declared
        modality the message leaves out is taken back (a tombstone), so a dropped image goes too."""
        ctx = self.ctx
        given = item.vectors or {}
        for name in ctx.settings.modalities:
            key = vector_key("item", name, item.item_id)
            if name in given:
                vector = np.asarray(given[name], dtype=np.float32)
                message = vector_message("item", name, item.item_id, vector, "producer", item.ts)
                ctx.output.send(ctx.topics.vectors, message, key=key)
            elif not (name == "image" and self._pictured(item)):
                ctx.output.send(ctx.topics.vectors, None, key=key)

    def _send_states(self, states: list[tuple[str, bool, str, EventT[Any], list[str]]]) -> None:
        """Items leaving (or rejoining) the catalog, under their text-vector keys, timed as the
        catalog message was, so that the lists they renew are timed from it."""
        ctx = self.ctx
        for item_id, available, reason, event, tags in states:
            ts = event.message.timestamp
            ctx.output.send(
                ctx.topics.vectors,
                availability_message(item_id, available, ts, reason, tags=tags),
                key=vector_key("item", "text", item_id),
                timestamp_ms=int(ts * 1000),
            )

    def _send_reviews(self, reviews: list[tuple[Review, EventT[Any]]], passages: list[Passage]) -> None:
        """Each review as read by the committed sentiment model; then its rating is learned."""
        ctx, version = self.ctx, self.encoder.version
        for (review, event), passage in zip(reviews, passages, strict=True):
            msg = event.message
            reading = self.reader.judge(passage, review.rating)
            self.reader.learn(passage, review.rating)
            trigger = Trigger(topic=msg.topic, partition=msg.partition, offset=msg.offset, ts=msg.timestamp)
            ctx.output.send(
                ctx.topics.reviews_encoded,
                encoded_review(review, reading, version, trigger),
                key=review_key(review),
                partition=msg.partition % self.partitions(ctx.topics.reviews_encoded),
                # Keeps the review's own timestamp, so latency is measured from the original event.
                timestamp_ms=int(msg.timestamp * 1000),
            )

    # -- checkpoints ----------------------------------------------------------------

    async def _on_timer(self, force: bool = False) -> None:
        interval = self.ctx.settings.encoder.checkpoint_interval_s
        if force or time.monotonic() - self._last_checkpoint >= interval:
            async with self.lock:
                await self._checkpoint()

    async def _checkpoint(self) -> None:
        """What was learned starts reading reviews, and becomes durable with the offsets read up to;
        the events it covers are acknowledged once it is on disk."""
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
        self.acks.write(self.store.dumps(state, self.offsets))
