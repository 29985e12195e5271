"""The encoder role: turns item and review text into vectors, in micro-batches.

Stateless, so it scales by adding processes and can run alone on a GPU machine:
it only needs Kafka. Item vectors go to the compacted `vectors` topic; review
vectors go to `reviews-encoded`, into the same partition as the source review so
that a user's clicks and reviews stay together whatever partitioner the producer
used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT

from streamrec.model.encoder import TransformerEncoder
from streamrec.model.errors import InvalidEvent
from streamrec.model.opinions import AspectReader, clauses_of, segments
from streamrec.model.schemas import Item, Review, Trigger
from streamrec.streams.context import Context
from streamrec.streams.messages import encoded_review, review_key, vector_key, vector_message

__all__ = ["EncoderRole"]

log = logging.getLogger(__name__)
ROLE = "encoder"


class EncoderRole:
    """Owns the text encoder and dead letters of `items`."""

    def __init__(self, ctx: Context, encoder: TransformerEncoder | None = None) -> None:
        self.ctx = ctx
        cfg = ctx.settings.encoder
        self.encoder = encoder or TransformerEncoder(
            model=cfg.model,
            device=cfg.device,
            dtype=cfg.dtype,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
        )
        self.encoder.warm_up()
        log.info("encoder %s on %s (%d dims)", self.encoder.version, self.encoder.device, self.encoder.dim)
        # Reviews are read for the aspects they speak of: each clause is encoded with its review.
        self.aspects = AspectReader(self.encoder, ctx.settings.aspects())
        # One thread: the model is not re-entrant, and torch parallelizes inside a batch.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        self._partitions: dict[str, int] = {}

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
        ctx.sources.update({ctx.topics.items: ROLE, ctx.topics.reviews: ROLE})

    async def _agent(self, stream: StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # StreamT does not declare the batching methods
        cfg = self.ctx.settings.encoder
        async for events in stream.take_events(cfg.batch_size, within=cfg.max_wait_ms / 1000):
            await self.handle(events)

    async def handle(self, events: Sequence[EventT[Any]]) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        items: list[tuple[Item, EventT[Any]]] = []
        reviews: list[tuple[Review, EventT[Any]]] = []
        for event in events:
            msg = event.message
            ctx.metrics.events_consumed.labels(msg.topic, ROLE).inc()
            if msg.topic == ctx.topics.items:
                if event.value is None:
                    continue  # a tombstone: the catalog entry was deleted
                try:
                    item = ctx.parser.item(event.value)
                except InvalidEvent as exc:
                    ctx.deadletters.send(msg.topic, msg.partition, msg.offset, exc, event.value, msg.key)
                    continue
                if item.text() != item.item_id:
                    items.append((item, event))
                # else: a title that is the item's id says nothing; its reviews will describe it
            else:
                try:
                    reviews.append((ctx.parser.review(event.value), event))
                except InvalidEvent:
                    continue  # the CF role dead-letters invalid reviews
        spans = [segments(review.text) for review, _ in reviews]
        clauses = clauses_of([review.text for review, _ in reviews], spans)
        texts = [item.text() for item, _ in items] + [review.text for review, _ in reviews] + clauses
        if texts:
            encode_started = time.perf_counter()
            vectors = await asyncio.get_running_loop().run_in_executor(self._pool, self.encoder.encode, texts)
            n_read = len(items) + len(reviews)
            said = [review.text for review, _ in reviews]
            mentions = self.aspects.mentions(said, spans, clauses, vectors[n_read:])
            ctx.metrics.encoder_batch_seconds.observe(time.perf_counter() - encode_started)
            ctx.metrics.encoder_batch_size.observe(len(texts))
            ctx.metrics.encoder_texts.labels("item").inc(len(items))
            ctx.metrics.encoder_texts.labels("review").inc(len(reviews))
            version = self.encoder.version
            for (item, _), vector in zip(items, vectors[: len(items)], strict=True):
                ctx.output.send(
                    ctx.topics.vectors,
                    vector_message(
                        "item",
                        "text",
                        item.item_id,
                        vector,
                        version,
                        item.ts,
                        title=item.title,
                        tags=item.tags,
                    ),
                    key=vector_key("item", "text", item.item_id),
                )
            read = vectors[len(items) : n_read]
            for (review, event), vector, found in zip(reviews, read, mentions, strict=True):
                msg = event.message
                trigger = Trigger(
                    topic=msg.topic, partition=msg.partition, offset=msg.offset, ts=msg.timestamp
                )
                ctx.output.send(
                    ctx.topics.reviews_encoded,
                    encoded_review(review, vector, version, trigger, found),
                    key=review_key(review),
                    partition=msg.partition % self.partitions(ctx.topics.reviews_encoded),
                    # Keeps the review's own timestamp, so latency is measured from the original event.
                    timestamp_ms=int(msg.timestamp * 1000),
                )
        await ctx.output.flush()
        ctx.metrics.batch_events.labels(ROLE).observe(len(events))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)
