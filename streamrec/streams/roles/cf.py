"""The CF role: learns online matrix factorization from clicks and reviews.

Exactly-once learning: the model is checkpointed together with the offsets it has
learned up to, and input offsets are committed only after the checkpoint (and
everything produced from those events) is durable. After a crash the worker
reloads the checkpoint and skips re-delivered events below its offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from aiokafka import ConsumerRecord

from streamrec.model.cf import OnlineCF
from streamrec.model.errors import InvalidEvent
from streamrec.model.schemas import parse_id
from streamrec.streams.checkpoint import CheckpointStore
from streamrec.streams.context import Context
from streamrec.streams.feed import GlobalFeed
from streamrec.streams.messages import vector_key, vector_message
from streamrec.streams.topics import aiokafka_config

__all__ = ["CFRole"]

log = logging.getLogger(__name__)
ROLE = "cf"


class CFRole:
    """Owns the CF model, its checkpoint, and dead letters of `clicks` and `reviews`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.store = CheckpointStore(settings.data_dir / f"{settings.topic_prefix}cf" / "checkpoint.pkl")
        saved = self.store.load()
        if saved is not None:
            self.model: OnlineCF = saved.model
            self.offsets: dict[str, int] = saved.offsets
            log.info(
                "CF model restored: %d users, %d items, %d events learned",
                self.model.n_users, self.model.n_items, self.model.n_learned,
            )
        else:
            cfg = settings.cf
            self.model = OnlineCF(n_factors=cfg.n_factors, n_negatives=cfg.n_negatives, lr=cfg.lr)
            self.offsets = {}
        self.known_items: set[str] = set()
        self.pending: list[faust.types.EventT] = []
        self._last_publish = time.monotonic()
        self._last_checkpoint = time.monotonic()
        self._lock = asyncio.Lock()
        self.catalog = GlobalFeed(
            [ctx.topics.items], self._on_items, aiokafka_config(settings, ctx.bootstrap), ctx.metrics, ROLE
        )

    def install(self, app: faust.App) -> None:
        ctx = self.ctx
        source = app.topic(ctx.topics.clicks, ctx.topics.reviews, value_serializer="raw", key_serializer="raw")
        app.agent(source, name=f"{ctx.settings.topic_prefix}cf")(self._agent)
        app.timer(ctx.settings.cf.checkpoint_interval_s, name="cf-checkpoint")(self._on_timer)
        app.service(self.catalog)
        ctx.ready_checks[ROLE] = self.catalog.caught_up.is_set

    async def _on_items(self, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            if record.value is None:
                if record.key:
                    self.known_items.discard(record.key.decode("utf-8", "replace"))
                continue
            try:
                self.known_items.add(parse_id(orjson.loads(record.value)["item_id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # the encoder dead-letters bad catalog entries

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        settings = self.ctx.settings
        async for events in stream.noack_take(settings.cf.batch_size, within=0.05):
            async with self._lock:
                await self._learn(events)
                now = time.monotonic()
                if now - self._last_publish >= settings.cf.publish_interval_s:
                    self.publish()
                if now - self._last_checkpoint >= settings.cf.checkpoint_interval_s:
                    await self._checkpoint()

    async def _learn(self, events: Sequence[faust.types.EventT]) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        clicks_topic = ctx.topics.clicks
        parser, model, offsets = ctx.parser, self.model, self.offsets
        for event in events:
            msg = event.message
            tp = f"{msg.topic}:{msg.partition}"
            if msg.offset < offsets.get(tp, 0):
                continue  # learned before the last checkpoint: re-delivered after a restart
            try:
                if msg.topic == clicks_topic:
                    click = parser.click(event.value)
                    user, item, rating = click.user_id, click.item_id, None
                else:
                    review = parser.review(event.value)
                    user, item, rating = review.user_id, review.item_id, review.rating
                if item not in self.known_items:
                    await self.catalog.catch_up()  # the catalog entry may be just behind
                    if item not in self.known_items:
                        raise InvalidEvent("unknown_item", f"item_id must be in the catalog, got {item!r}")
            except InvalidEvent as exc:
                ctx.deadletters.send(msg.topic, msg.partition, msg.offset, exc, event.value, msg.key)
            else:
                model.learn_one(user, item, rating)
            offsets[tp] = msg.offset + 1
        self.pending.extend(events)
        counts: dict[str, int] = {}
        for event in events:
            counts[event.message.topic] = counts.get(event.message.topic, 0) + 1
        for topic, n in counts.items():
            ctx.metrics.events_consumed.labels(topic, ROLE).inc(n)
        ctx.metrics.batch_events.labels(ROLE).observe(len(events))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def publish(self) -> None:
        """Send the vectors of users and items whose factors changed."""
        ctx, model = self.ctx, self.model
        users, items = model.drain_changed()
        topic, version, now = ctx.topics.vectors, model.version, time.time()
        for user in users:
            vector = model.user_vector(user)
            if vector is not None:
                ctx.output.send(
                    topic, vector_message("user", "cf", str(user), vector, version, now),
                    key=vector_key("user", "cf", str(user)),
                )
        item_list = [str(i) for i in items]
        for item, vector in zip(item_list, model.item_vectors(item_list), strict=True):
            ctx.output.send(
                topic, vector_message("item", "cf", item, vector, version, now), key=vector_key("item", "cf", item)
            )
        ctx.metrics.model_entities.labels(ROLE, "users").set(model.n_users)
        ctx.metrics.model_entities.labels(ROLE, "items").set(model.n_items)
        self._last_publish = time.monotonic()

    async def _checkpoint(self) -> None:
        """Make model, offsets and outputs durable, then let faust commit the inputs."""
        if not self.pending:
            self._last_checkpoint = time.monotonic()
            return
        started = time.perf_counter()
        self.publish()
        await self.ctx.output.flush()
        blob = self.store.dumps(self.model, self.offsets)
        await asyncio.get_running_loop().run_in_executor(None, self.store.write, blob)
        pending, self.pending = self.pending, []
        for event in pending:
            event.ack()
        self._last_checkpoint = time.monotonic()
        self.ctx.metrics.cf_checkpoint_seconds.observe(time.perf_counter() - started)

    async def _on_timer(self) -> None:
        async with self._lock:
            await self._checkpoint()

    async def stop(self) -> None:
        """Checkpoint what is learned, so a clean shutdown replays nothing."""
        async with self._lock:
            await self._checkpoint()
