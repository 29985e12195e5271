"""The CF role: learns online matrix factorization from clicks and reviews.

Exactly-once learning: the model is checkpointed together with the offsets it has
learned up to; offsets are committed only after that checkpoint, and what was
produced from those events, are durable; when partitions are assigned (after a
restart or a rebalance) the consumer seeks to the checkpoint's offsets. Every
event is learned once, whatever the moment of a crash.

The role reads Kafka in batches with its own consumer (a service of the faust
worker) instead of a faust agent: a faust stream costs about 80 microseconds per
event before any work, more than a river update itself, and capped this role at
a third of the model's own speed. See README, Performance.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from streamrec.model.cf import OnlineCF
from streamrec.model.dedupe import Deduplicator, fingerprint
from streamrec.model.errors import InvalidEvent
from streamrec.model.schemas import Audit, Trigger, parse_id
from streamrec.streams.checkpoint import CheckpointStore
from streamrec.streams.context import Context
from streamrec.streams.feed import GlobalFeed
from streamrec.streams.messages import decode_vector, encode_vector, vector_key, vector_message
from streamrec.streams.topics import aiokafka_config

__all__ = ["CFRole"]

log = logging.getLogger(__name__)
ROLE = "cf"
DELTAS_PER_MESSAGE = 500
#: Stands for every part of a batch, in checkpoints that tracked whole batches only.
ALL_PARTS = 1 << 30
#: Once the input is drained, checkpoint after this long rather than the full interval.
IDLE_CHECKPOINT_S = 0.5
#: How long a click on an item not (yet) in the catalog waits for the catalog feed.
CATALOG_WAIT_S = 5.0


def _tp_key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, role: CFRole) -> None:
        self.role = role

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Hand partitions over with everything learned from them saved and committed.
        await self.role.checkpoint()
        self.role.assigned = False

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.role.seek_to_checkpoint(assigned)
        self.role.assigned = True


class CFRole(Service):
    """Owns the CF model, its checkpoint, and dead letters of `clicks` and `reviews`."""

    def __init__(self, ctx: Context, **kwargs: Any) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.store = CheckpointStore(settings.data_dir / f"{settings.topic_prefix}cf" / "checkpoint.pkl")
        saved = self.store.load()
        self.seen = Deduplicator()
        #: This worker's name among CF workers, and how many delta batches it has shared.
        self.worker = uuid.uuid4().hex
        self.delta_seq = 0
        #: Last delta message applied, as (batch, part), per other worker: a message seen
        #: again (the producer delivers at least once) is skipped.
        self.applied_seq: dict[str, tuple[int, int]] = {}
        if saved is not None:
            self.model: OnlineCF = saved.model["cf"]
            self.seen = saved.model["seen"]
            self.worker = saved.model["worker"]
            self.delta_seq = saved.model["delta_seq"]
            self.applied_seq = {
                # A whole batch (an int) in checkpoints written before parts were tracked.
                w: (mark, ALL_PARTS) if isinstance(mark, int) else tuple(mark)
                for w, mark in saved.model["applied_seq"].items()
            }
            self.offsets: dict[str, int] = saved.offsets
        else:
            cfg = settings.cf
            self.model = OnlineCF(n_factors=cfg.n_factors, n_negatives=cfg.n_negatives, lr=cfg.lr)
            self.offsets = {}
        self.known_items: set[str] = set()
        self.assigned = False
        self._uncommitted = False
        self._last_publish = time.monotonic()
        self._last_checkpoint = time.monotonic()
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self.catalog = GlobalFeed(
            [ctx.topics.items], self._on_items, aiokafka_config(settings, ctx.bootstrap), ctx.metrics, ROLE
        )
        # Other CF workers' item factor changes, applied exactly once: their offsets are
        # in this worker's checkpoint, and the feed resumes from them.
        self.peers = GlobalFeed(
            [ctx.topics.cf_deltas],
            self._on_deltas,
            aiokafka_config(settings, ctx.bootstrap),
            ctx.metrics,
            ROLE,
            resume_from=lambda: dict(self.offsets),
        )
        super().__init__(**kwargs)

    def install(self, app: Any) -> None:
        app.service(self.catalog)
        app.service(self.peers)
        app.service(self)
        self.ctx.ready_checks[ROLE] = lambda: (
            self.catalog.caught_up.is_set() and self.peers.caught_up.is_set() and self.assigned
        )

    # -- the catalog ----------------------------------------------------------------

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

    async def _on_deltas(self, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            self.offsets[f"{record.topic}:{record.partition}"] = record.offset + 1
            if record.value is None:
                continue
            batch = orjson.loads(record.value)
            worker, mark = batch["worker"], (batch["seq"], batch["part"])
            if worker == self.worker or mark <= self.applied_seq.get(worker, (0, 0)):
                continue  # our own, applied before a restart, or a repeat
            self.model.apply_item_deltas({item: decode_vector(row) for item, row in batch["items"].items()})
            self.applied_seq[worker] = mark
            self._uncommitted = True

    def share_deltas(self) -> None:
        """Send what local learning changed in item factors, for the other CF workers."""
        deltas = self.model.take_item_deltas()
        if not deltas:
            return
        self.delta_seq += 1
        items = list(deltas.items())
        for part, start in enumerate(range(0, len(items), DELTAS_PER_MESSAGE)):
            chunk = items[start : start + DELTAS_PER_MESSAGE]
            batch = {
                "worker": self.worker,
                "seq": self.delta_seq,
                "part": part,
                "items": {str(item): encode_vector(row) for item, row in chunk},
            }
            self.ctx.output.send(self.ctx.topics.cf_deltas, orjson.dumps(batch), key=self.worker.encode())

    # -- consuming ------------------------------------------------------------------

    async def on_start(self) -> None:
        settings = self.ctx.settings
        if self.offsets:  # logged here: logging is set up once the worker starts
            log.info(
                "CF model restored: %d users, %d items, %d events learned, resuming at %s",
                self.model.n_users,
                self.model.n_items,
                self.model.n_learned,
                ", ".join(f"{tp} {offset}" for tp, offset in sorted(self.offsets.items())),
            )
        consumer = AIOKafkaConsumer(
            group_id=settings.topic("streamrec-cf"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
            heartbeat_interval_ms=int(max(500, settings.kafka_session_timeout_s * 100)),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **aiokafka_config(settings, self.ctx.bootstrap),
        )
        await consumer.start()
        topics = self.ctx.topics
        consumer.subscribe([topics.clicks, topics.reviews, topics.forget], listener=_Rebalance(self))
        self._consumer = consumer

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self.checkpoint()
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def seek_to_checkpoint(self, assigned: list[TopicPartition]) -> None:
        """Resume each partition where the saved model stopped, unless the group is further on."""
        consumer = self._consumer
        if consumer is None or not assigned:
            return
        committed = {tp: await consumer.committed(tp) for tp in assigned}
        for tp in assigned:
            saved = self.offsets.get(_tp_key(tp))
            done = committed.get(tp)
            if saved is not None and (done is None or saved > done):
                consumer.seek(tp, saved)
            log.info(
                "assigned %s: checkpoint at %s, group committed %s",
                _tp_key(tp),
                saved,
                done,
            )

    @Service.task
    async def _consume(self) -> None:
        settings = self.ctx.settings
        # Learn nothing before the catalog and the other workers' item deltas are loaded: a click
        # on an item the catalog has not been read up to yet would be dead-lettered as unknown.
        await self.catalog.caught_up.wait()
        await self.peers.caught_up.wait()
        while not self.should_stop:
            consumer = self._consumer
            if consumer is None:
                await asyncio.sleep(0.05)
                continue
            try:
                batches = await consumer.getmany(timeout_ms=50, max_records=settings.cf.batch_size)
            except KafkaError as exc:
                self.ctx.metrics.retries.labels("cf_fetch").inc()
                log.warning("fetch failed, retrying: %s", exc)
                await asyncio.sleep(1.0)
                continue
            async with self._lock:
                for tp, records in batches.items():
                    await self._learn(tp, records)
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

    async def _learn(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        key = _tp_key(tp)
        if tp.topic == ctx.topics.forget:
            await self._forget(tp, records)
            return
        is_click = tp.topic == ctx.topics.clicks
        parse = ctx.parser.click if is_click else ctx.parser.review
        model, known, learn, seen = self.model, self.known_items, self.model.learn_one, self.seen
        duplicates = learned = 0
        caught_up = False
        for record in records:
            try:
                event = parse(record.value)
                if event.item_id not in known and not caught_up:
                    # The catalog entry may be just behind, on another topic.
                    if not await self.catalog.catch_up(timeout=CATALOG_WAIT_S):
                        log.warning(
                            "the catalog feed is %.0fs behind; unknown items go to dead letters",
                            CATALOG_WAIT_S,
                        )
                    caught_up = True
                if event.item_id not in known:
                    raise InvalidEvent(
                        "unknown_item", f"item_id must be in the catalog, got {event.item_id!r}"
                    )
            except InvalidEvent as exc:
                ctx.deadletters.send(tp.topic, tp.partition, record.offset, exc, record.value, record.key)
                continue
            # Only valid events count as seen: a repeated bad message is dead-lettered again.
            if is_click:
                mark = fingerprint("c", event.user_id, event.item_id, event.event, event.ts)  # type: ignore[union-attr]
            else:
                mark = fingerprint("r", event.user_id, event.item_id, event.ts, event.review_id or event.text)  # type: ignore[union-attr]
            if seen.check(mark):
                duplicates += 1
                continue
            learn(event.user_id, event.item_id, getattr(event, "rating", None))
            learned += 1
        if records:
            self.offsets[key] = records[-1].offset + 1
            self._uncommitted = True
        if duplicates:
            ctx.metrics.duplicates.labels(tp.topic, ROLE).inc(duplicates)
        ctx.metrics.learned.labels(tp.topic).inc(learned)
        ctx.metrics.events_consumed.labels(tp.topic, ROLE).inc(len(records))
        ctx.metrics.batch_events.labels(ROLE).observe(len(records))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)
        ctx.metrics.model_entities.labels(ROLE, "users").set(model.n_users)
        ctx.metrics.model_entities.labels(ROLE, "items").set(model.n_items)

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
            erased = ["cf factors"] if self.model.forget_user(user) else []
            ctx.output.send(ctx.topics.vectors, None, key=vector_key("user", "cf", user))
            erased.append("cf vector (tombstone)")
            audit = Audit(
                user_id=user,
                role=ROLE,
                erased=erased,
                request=Trigger(
                    topic=tp.topic, partition=tp.partition, offset=record.offset, ts=record.timestamp / 1000
                ),
                completed_at=time.time(),
            )
            ctx.output.send(ctx.topics.audit, orjson.dumps(audit.model_dump()), key=user.encode())
            ctx.metrics.forgotten.labels(ROLE).inc()
            log.info("forgot user %s: %s", user, ", ".join(erased))
        if records:
            self.offsets[_tp_key(tp)] = records[-1].offset + 1
            self._uncommitted = True
            # The erasure must reach the durable model now, not at the next periodic checkpoint.
            self._last_checkpoint = 0.0
        ctx.metrics.events_consumed.labels(tp.topic, ROLE).inc(len(records))

    # -- outputs --------------------------------------------------------------------

    def publish(self) -> None:
        """Send the vectors of users and items whose factors changed."""
        ctx, model = self.ctx, self.model
        users, items = model.drain_changed()
        topic, version, now = ctx.topics.vectors, model.version, time.time()
        for user in users:
            vector = model.user_vector(user)
            if vector is not None:
                ctx.output.send(
                    topic,
                    vector_message("user", "cf", str(user), vector, version, now),
                    key=vector_key("user", "cf", str(user)),
                )
        item_list = [str(i) for i in items]
        for item, vector in zip(item_list, model.item_vectors(item_list), strict=True):
            ctx.output.send(
                topic,
                vector_message("item", "cf", item, vector, version, now),
                key=vector_key("item", "cf", item),
            )
        self._last_publish = time.monotonic()

    async def checkpoint(self) -> None:
        async with self._lock:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Make outputs, model and offsets durable, then commit the offsets."""
        self._last_checkpoint = time.monotonic()
        if not self._uncommitted:
            return
        started = time.perf_counter()
        self.publish()
        self.share_deltas()
        await self.ctx.output.flush()
        offsets = dict(self.offsets)
        state = {
            "cf": self.model,
            "seen": self.seen,
            "worker": self.worker,
            "delta_seq": self.delta_seq,
            "applied_seq": dict(self.applied_seq),
        }
        blob = self.store.dumps(state, offsets)
        await asyncio.get_running_loop().run_in_executor(None, self.store.write, blob)
        consumer = self._consumer
        if consumer is not None:
            assignment = consumer.assignment()
            commit = {}
            for tp in assignment:
                offset = offsets.get(_tp_key(tp))
                if offset is not None:
                    commit[tp] = OffsetAndMetadata(offset, "")
            if commit:
                try:
                    await consumer.commit(commit)
                except KafkaError as exc:
                    # The checkpoint holds the offsets: a restart resumes there regardless.
                    self.ctx.metrics.retries.labels("cf_commit").inc()
                    log.warning("commit failed (the checkpoint is saved): %s", exc)
        self._uncommitted = False
        self.ctx.metrics.cf_checkpoint_seconds.observe(time.perf_counter() - started)

    @Service.timer(5.0)
    async def _lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            self.ctx.metrics.consumer_lag.labels(tp.topic, str(tp.partition), ROLE).set(
                max(0, highwater - position)
            )

    @Service.timer(1.0)
    async def _periodic(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self.ctx.settings.cf.checkpoint_interval_s:
            await self.checkpoint()
