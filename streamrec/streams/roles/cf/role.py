"""The CF role: learns online matrix factorization from clicks and reviews.

Exactly-once learning: the model is checkpointed together with the offsets it has
learned up to; offsets are committed only after that checkpoint, and what was
produced from those events, are durable; when partitions are assigned (after a
restart or a rebalance) the consumer seeks to the checkpoint's offsets. Every
event is learned once, whatever the moment of a crash.

Across the group, a checkpoint is put in place only once the group's log (`cf-deltas`) finds its
commit valid (`streamrec.streams.roles.cf.checkpoints`); what the workers tell each other there is
`streamrec.streams.roles.cf.deltas`'s.

The role reads Kafka in batches with its own consumer (a service of the faust
worker) instead of a faust agent: a faust stream costs about 80 microseconds per
event before any work, more than a river update itself, and capped this role at
a third of the model's own speed. See docs/performance.md. What it does with each
event is `streamrec.model.cf.learner.Learner`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from mode import Service

from streamrec.model.cf.learner import Learner
from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Audit, Click, Impression, Review, Trigger, parse_id
from streamrec.streams.context import Context
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.consumer import CheckpointedConsumer, own_group, tp_key
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.kafka.group_log import GroupLog
from streamrec.streams.messages import vector_key
from streamrec.streams.roles.cf.checkpoints import Checkpoints
from streamrec.streams.roles.cf.deltas import ROLE

__all__ = ["CFRole"]

log = logging.getLogger(__name__)
#: Once the input is drained, checkpoint after this long rather than the full interval.
IDLE_CHECKPOINT_S = 0.5
#: How long a click on an item not (yet) in the catalog waits for the catalog feed.
CATALOG_WAIT_S = 5.0


class CFRole(Checkpoints, Service):
    """Owns the CF model, its checkpoint, and dead letters of `clicks`, `reviews` and `forget`."""

    learner: Learner

    def __init__(self, ctx: Context, **kwargs: Any) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.store = CheckpointStore.claim(settings, ROLE)
        self._restore(self.store.load())
        topics = ctx.topics
        self.consumer = CheckpointedConsumer(
            ctx.clients,
            settings,
            own_group(settings, ROLE),
            [topics.clicks, topics.reviews, topics.forget],
            on_assigned=self._on_assigned,
            on_revoked=self.checkpoint,
            metrics=ctx.metrics,
            role=ROLE,
        )
        #: The claim id this worker learns each partition under ("topic:partition" -> id).
        self._claims: dict[str, str] = {}
        #: Set when the group's log found this worker's commit invalid, until it reloads.
        self._fenced = False
        self._last_publish = time.monotonic()
        self._last_checkpoint = time.monotonic()
        #: The checkpoint being written, flushed and committed in the background.
        self._landing: asyncio.Future[None] | None = None
        self._staged_attempt: str | None = None
        self._lock = asyncio.Lock()
        self.catalog = GlobalFeed([ctx.topics.items], self._on_items, ctx.clients, ctx.metrics, ROLE)
        # Other CF workers' item factor changes, applied exactly once: their offsets are
        # in this worker's checkpoint, and the feed resumes from them.
        self.peers = GlobalFeed(
            [ctx.topics.cf_deltas],
            self._on_deltas,
            ctx.clients,
            ctx.metrics,
            ROLE,
            resume_from=lambda: dict(self.offsets),
        )
        self.group = GroupLog(ctx.output, ctx.topics.cf_deltas, self.peers)
        super().__init__(**kwargs)

    def install(self, app: Any) -> None:
        app.service(self.catalog)
        app.service(self.peers)
        app.service(self)
        self.ctx.ready_checks[ROLE] = lambda: (
            self.catalog.caught_up.is_set() and self.peers.caught_up.is_set() and self.consumer.assigned
        )

    # -- the catalog and the other workers ------------------------------------------

    async def _on_items(self, records: Sequence[ConsumerRecord]) -> None:
        catalog = self.learner.catalog
        for record in records:
            if record.value is None:
                if record.key:
                    catalog.discard(record.key.decode("utf-8", "replace"))
                continue
            try:
                catalog.add(parse_id(orjson.loads(record.value)["item_id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # the encoder dead-letters bad catalog entries

    async def _on_assigned(self, assigned: list[TopicPartition]) -> dict[str, int]:
        """Claim the partitions on the group's log; each starts where the latest valid commit
        (this worker's or another's) left it."""
        async with self._lock:
            await self._settle()
            if not assigned:
                return {}
            claims = await self.group.claim(self.learner.worker, assigned)
            self._claims.update(claims)
            position = self.learner.fence.position
            return {
                tp: max(self.offsets.get(tp, 0), position.get(tp, 0))
                for tp in claims
                if tp in self.offsets or tp in position
            }

    # -- consuming ------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.offsets:  # logged here: logging is set up once the worker starts
            log.info(
                "CF model restored: %d users, %d items, %d events learned, resuming at %s",
                self.model.n_users,
                self.model.n_items,
                self.model.n_learned,
                ", ".join(f"{tp} {offset}" for tp, offset in sorted(self.offsets.items())),
            )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer.started:
            await self.checkpoint()
            await self.consumer.stop()

    @Service.task
    async def _consume(self) -> None:
        settings = self.ctx.settings
        # Learn nothing before the catalog and the other workers' item deltas are loaded: a click
        # on an item the catalog has not been read up to yet would be dead-lettered as unknown.
        await self.catalog.caught_up.wait()
        await self.peers.caught_up.wait()
        while not self.should_stop:
            if self._fenced:
                await self._recover()
                continue
            if not self.consumer.started:
                await asyncio.sleep(0.05)
                continue
            generation = self.consumer.generation
            batches = await self.consumer.fetch(0, settings.cf.batch_size, wait_ms=50)
            async with self._lock:
                if generation != self.consumer.generation or self._fenced:
                    # The group moved partitions while this was fetched: from before the move, or
                    # from where the new assignment starts. Either way, read again from there.
                    await self.consumer.restart_assignment()
                    continue
                waiting: dict[TopicPartition, int] = {}
                for tp, records in batches.items():
                    stopped_at = await self._learn(tp, records)
                    if stopped_at is not None:
                        waiting[tp] = stopped_at
                if waiting:  # read again, once the catalog feed has moved on
                    self.consumer.seek(waiting)
                now = time.monotonic()
                if now - self._last_publish >= settings.cf.publish_interval_s:
                    self.publish()
                # Under load, a checkpoint every interval; once the input is drained, at once:
                # what a burst taught the model is then durable (and committed) right away.
                since = now - self._last_checkpoint
                if since >= settings.cf.checkpoint_interval_s or (
                    not batches and self._uncommitted and since >= IDLE_CHECKPOINT_S
                ):
                    await self._checkpoint()

    async def _recover(self) -> None:
        """After an invalid commit: back to the last valid checkpoint, and a new membership
        unless the group is already handing the partitions out again."""
        async with self._lock:
            if not self._fenced:
                return
            self._reload(self.store.load())
            rejoin = self.consumer.assigned
        if rejoin:
            await self.consumer.rejoin()

    async def _learn(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> int | None:
        """Learn a partition's batch; the offset it stopped at if a record names an item the
        catalog feed may not have read yet (it is read again later), else None.

        Kafka orders nothing across topics: a catalog entry written before a click can reach
        this role after it. An item is unknown only once the catalog feed has read everything
        written before the click; until then the click waits rather than going to dead letters.
        """
        ctx = self.ctx
        started = time.perf_counter()
        if tp.topic == ctx.topics.forget:
            await self._forget(tp, records)
            return None
        parse = ctx.parser.click if tp.topic == ctx.topics.clicks else ctx.parser.review
        learner, catalog = self.learner, self.learner.catalog
        duplicates = learned = 0
        caught_up = False
        stopped_at: int | None = None
        for n, record in enumerate(records):
            try:
                event: Click | Impression | Review = parse(record.value)
                if not caught_up and any(item not in catalog for item in _items_of(event)):
                    # Every record of this batch was written before this check: once the feed
                    # has read the catalog's end as of now, an item it lacks is unknown.
                    if not await self.catalog.catch_up(timeout=CATALOG_WAIT_S):
                        log.warning(
                            "the catalog feed is more than %.0fs behind; clicks on items it has "
                            "not read yet wait for it",
                            CATALOG_WAIT_S,
                        )
                        ctx.metrics.catalog_waits.labels(ROLE).inc()
                        stopped_at = record.offset
                        records = records[:n]
                        break
                    caught_up = True
                if learner.learn(event, written=record.timestamp / 1000):
                    learned += 1
                else:
                    duplicates += 1
            except InvalidEvent as exc:
                ctx.deadletters.send(tp.topic, tp.partition, record.offset, exc, record.value, record.key)
        if records:
            self.offsets[tp_key(tp)] = records[-1].offset + 1
            self._uncommitted = True
        if duplicates:
            ctx.metrics.duplicates.labels(tp.topic, ROLE).inc(duplicates)
        ctx.metrics.learned.labels(tp.topic).inc(learned)
        ctx.metrics.events_consumed.labels(tp.topic, ROLE).inc(len(records))
        ctx.metrics.batch_events.labels(ROLE).observe(len(records))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)
        ctx.metrics.model_entities.labels(ROLE, "users").set(self.model.n_users)
        ctx.metrics.model_entities.labels(ROLE, "items").set(self.model.n_items)
        return stopped_at

    async def _forget(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> None:
        """Erase users: their factors leave the model, the next checkpoint and the vectors topic."""
        ctx = self.ctx
        for record in records:
            try:
                request = ctx.parser.forget(record.value)
            except InvalidEvent as exc:
                ctx.deadletters.send(tp.topic, tp.partition, record.offset, exc, record.value, record.key)
                continue
            user = request.user_id
            erased = self.learner.forget(user, at=record.timestamp / 1000)
            ctx.output.send(ctx.topics.vectors, None, key=vector_key("user", "cf", user))
            erased.append("cf vector (tombstone)")
            at = Trigger(
                topic=tp.topic, partition=tp.partition, offset=record.offset, ts=record.timestamp / 1000
            )
            audit = Audit(user_id=user, role=ROLE, erased=erased, request=at, completed_at=time.time())
            ctx.output.send(ctx.topics.audit, orjson.dumps(audit.model_dump()), key=user.encode())
            ctx.metrics.forgotten.labels(ROLE).inc()
            log.info("forgot user %s: %s", user, ", ".join(erased))
        if records:
            self.offsets[tp_key(tp)] = records[-1].offset + 1
            self._uncommitted = True
            # The erasure must reach the durable model now, not at the next periodic checkpoint.
            self._last_checkpoint = 0.0
        ctx.metrics.events_consumed.labels(tp.topic, ROLE).inc(len(records))

    @Service.timer(5.0)
    async def _lag(self) -> None:
        await self.consumer.report_lag()

    @Service.timer(1.0)
    async def _periodic(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self.ctx.settings.cf.checkpoint_interval_s:
            await self.checkpoint()


def _items_of(event: Click | Impression | Review) -> list[str]:
    return event.items if isinstance(event, Impression) else [event.item_id]
