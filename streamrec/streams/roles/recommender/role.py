"""The recommender role: keeps user profiles and the item index, and produces recommendations.

* A global feed reads every partition of `vectors` and `reviews-encoded` into the
  in-memory index, and Qdrant receives the same vectors (`IndexFeed`).
* Its own consumer (`streamrec.streams.kafka.consumer.CheckpointedConsumer`, as the CF role
  and the encoder read theirs) reads `clicks`, `reviews-encoded` and `forget` for the
  partitions it owns, in batches, each partition in order from the checkpoint; each message
  is parsed once and handed to `streamrec.model.serving.service.Serving`, which updates each
  user's profile (kept per partition, with a compacted changelog the partition's next owner
  reads back) and says whose list to renew; once per user per batch the role ranks and
  produces a recommendation, so bursts coalesce. Offsets are committed only once a
  checkpoint that covers them is on disk.
  The role itself is the loop, its checkpoint and its outputs.
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

from streamrec.model.events.schemas import Audit, Click, Impression, Recommendation, RecommendedItem, Trigger
from streamrec.model.serving.service import Serving
from streamrec.model.text.reviews import EncodedReview
from streamrec.model.users.portrait import portrait
from streamrec.streams.context import Context
from streamrec.streams.forked import InChild
from streamrec.streams.kafka.checkpoint import CheckpointStore, CheckpointWriter
from streamrec.streams.kafka.consumer import CheckpointedConsumer, own_group, tp_key
from streamrec.streams.kafka.restore import read_to_end
from streamrec.streams.roles.index.role import IndexFeed
from streamrec.streams.roles.recommender.profiles import ChangelogProfiles
from streamrec.streams.roles.recommender.shared import aspect_labels, make_recommender, parse_user_event
from streamrec.streams.telemetry import TimedSearch
from streamrec.streams.vectors.sink import QdrantSink

__all__ = ["RecommenderRole"]

log = logging.getLogger(__name__)
ROLE = "recommender"
#: Users ranked and answered at a time within one batch.
RANK_SLICE = 64


class RecommenderRole(Service):
    """Owns the recommender state, the Qdrant view, and recommendations."""

    def __init__(self, ctx: Context, text_dim: int, **kwargs: Any) -> None:
        self.ctx = ctx
        settings = ctx.settings
        cfg = settings.recommender
        half_life = cfg.half_life_days * 86_400.0
        #: Changelogs of profiles written by earlier versions (a faust table's), read before
        #: the role's own and sent every deletion, so that what they hold is neither lost nor kept.
        self.legacy_changelogs: list[str] = []
        self.profiles = ChangelogProfiles(self._log_profile, half_life_s=half_life)
        self.labels = aspect_labels(settings)
        rec = make_recommender(settings, text_dim, self.profiles)
        rec.ranker.searcher = TimedSearch(rec.index, ctx.metrics, "memory")
        self.sink = QdrantSink(settings, ctx.metrics, rec.index.layout())
        self.store = CheckpointStore.claim(settings, ROLE)
        saved = self.store.load()
        if saved is None:
            self.serving = Serving(rec)
        else:
            self.serving = Serving.restored(rec, saved.model, saved.offsets)
            self.sink.restore(saved.model.get("qdrant_pending", {}))
        #: Where the checkpoint left each partition (logged at the start).
        self._restored = dict(self.serving.offsets)
        self.rec = rec
        # The item model's refits run in a child process of their own: events do not wait for them.
        self.fits = InChild("item model fit")
        rec.fit_elsewhere = self.fits
        self.index = IndexFeed(ctx, self.serving, self.sink, ROLE, on_withdrawn=self._on_withdrawn)
        self._renewals: set[asyncio.Task[None]] = set()
        self.acks = CheckpointWriter(self.store)
        self._last_checkpoint = time.monotonic()
        self._lock = asyncio.Lock()
        #: The partitions read since the start (the first offset of each is logged).
        self._read_from: set[tuple[str, int]] = set()
        topics = ctx.topics
        self.consumer = CheckpointedConsumer(
            ctx.clients,
            settings,
            own_group(settings, ROLE),
            [topics.clicks, topics.reviews_encoded, topics.forget],
            on_assigned=self._on_assigned,
            on_revoked=self._hand_over,
            metrics=ctx.metrics,
            role=ROLE,
        )
        super().__init__(**kwargs)

    def install(self, app: Any) -> None:
        app.service(self.index.feed)
        app.service(self)
        self.ctx.ready_checks[ROLE] = lambda: self.index.feed.caught_up.is_set() and self.consumer.assigned

    async def on_start(self) -> None:
        if self._restored:  # logged here: logging is set up once the worker starts
            log.info(
                "recommender counts restored (%d items), up to %s",
                len(self.rec.popularity),
                ", ".join(f"{tp} {offset}" for tp, offset in sorted(self._restored.items())),
            )
        self.index.open()
        self.legacy_changelogs = await asyncio.get_running_loop().run_in_executor(None, self._legacy)
        await self.consumer.start()

    def _legacy(self) -> list[str]:
        """The profile changelogs an earlier version's faust table wrote, if the cluster has any."""
        ctx = self.ctx
        names = ctx.clients.topics()
        prefix, own = ctx.settings.topic_prefix, ctx.topics.profiles_changelog
        return sorted(
            n for n in names if n.startswith(prefix) and n.endswith("profiles-changelog") and n != own
        )

    async def on_stop(self) -> None:
        for task in list(self._renewals):
            task.cancel()  # lists renewed for withdrawn items: the next owner renews them again
        if self.consumer.started:
            await self._hand_over()
            await self.consumer.stop()
        await self.fits.close()
        await self.index.close()

    # -- users, from their partitions -----------------------------------------------

    def _log_profile(self, partition: int, key: bytes, value: bytes | None) -> None:
        ctx = self.ctx
        ctx.output.send(ctx.topics.profiles_changelog, value, key=key, partition=partition)
        if value is None:
            for topic in self.legacy_changelogs:
                ctx.output.send(topic, None, key=key, partition=partition)

    async def _on_assigned(self, assigned: list[TopicPartition]) -> dict[str, int]:
        """The assigned partitions' profiles read back from the changelog; each partition starts
        where this process's checkpoint stopped reading it."""
        async with self._lock:
            partitions = sorted({tp.partition for tp in assigned})
            # Every partition was revoked before this assignment: what this process held of them may
            # be behind what another owner wrote since, and the changelog has it.
            self.profiles.drop()
            started = time.perf_counter()
            read = await read_to_end(
                self.ctx.clients,
                [*self.legacy_changelogs, self.ctx.topics.profiles_changelog],
                partitions,
                self.profiles.load,
            )
            log.info(
                "profiles of partitions %s read back: %d changelog records in %.1f s",
                partitions,
                read,
                time.perf_counter() - started,
            )
            offsets = self.serving.offsets
            return {key: offsets[key] for key in map(tp_key, assigned) if key in offsets}

    async def _hand_over(self) -> None:
        """Everything applied so far checkpointed and committed (before partitions go, or a stop)."""
        async with self._lock:
            await self._checkpoint()
        await self.acks.drain()

    @Service.task
    async def _consume(self) -> None:
        cfg = self.ctx.settings.recommender
        await self.index.feed.caught_up.wait()
        await self.consumer.run(
            self._lock,
            self.handle,
            self._checkpoint_due,
            cfg.coalesce_ms,
            cfg.batch_size,
            lambda: self.should_stop,
        )

    @Service.timer(5.0)
    async def _lag(self) -> None:
        await self.consumer.report_lag()

    @Service.timer(1.0)
    async def _periodic(self) -> None:
        await self._on_timer()

    @Service.task
    async def _flush_qdrant(self) -> None:
        while not self.should_stop:
            await self.sleep(self.ctx.settings.qdrant_flush_s)
            await self.index.flush()

    def _parse(self, record: ConsumerRecord) -> Click | Impression | EncodedReview | str | None:
        return parse_user_event(self.ctx, record.topic, record.value, record.key)

    async def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch of events and answer each user it touched, once."""
        ctx = self.ctx
        started = time.perf_counter()
        self.acks.changed()
        parsed = [(record, self._parse(record)) for record in records]
        if any(isinstance(e, Click) and e.item_id not in self.rec.index for _, e in parsed):
            # Vectors of a just-published item may be a few milliseconds behind in the feed.
            await self.index.feed.catch_up(timeout=0.5)
        triggers: dict[str, Trigger] = {}
        described: set[str] = set()
        takes = [(e.user_id, e.item_id) for _, e in parsed if isinstance(e, Click | EncodedReview)]
        with self.rec.learning_batch(takes):
            forgotten = self._apply(parsed, triggers, described)
        self.profiles.flush()
        self._describe(described)
        if triggers:
            await self._recommend(triggers)
        await ctx.output.flush()
        if forgotten:
            await self.index.flush()  # the Qdrant deletions, now rather than at the next tick
            # The erasure must reach the checkpoint now, not at the next periodic one.
            self._last_checkpoint = 0.0
        ctx.metrics.batch_events.labels(ROLE).observe(len(records))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def _apply(
        self,
        parsed: Sequence[tuple[ConsumerRecord, Click | Impression | EncodedReview | str | None]],
        triggers: dict[str, Trigger],
        described: set[str],
    ) -> bool:
        """Apply each parsed event in order: the users to answer go to `triggers` (with what
        triggered their list), those whose profile to describe to `described`. True if a user
        was forgotten."""
        ctx, serving = self.ctx, self.serving
        forgotten = False
        for msg, typed in parsed:
            ctx.metrics.events_consumed.labels(msg.topic, ROLE).inc()
            source = Trigger(
                topic=msg.topic, partition=msg.partition, offset=msg.offset, ts=msg.timestamp / 1000
            )
            if (msg.topic, msg.partition) not in self._read_from:
                self._read_from.add((msg.topic, msg.partition))
                log.info("reading %s:%d from offset %d", msg.topic, msg.partition, msg.offset)
            self.profiles.partition = msg.partition
            if typed is None:
                serving.advance(source)
            elif isinstance(typed, str):
                serving.advance(source)
                triggers.pop(typed, None)
                described.discard(typed)
                self._forget(typed, source)
                forgotten = True
            elif isinstance(typed, Click):
                if serving.click(typed, source):
                    triggers[typed.user_id] = source
                    self.sink.mark("users", [typed.user_id])
                else:
                    ctx.metrics.duplicates.labels(msg.topic, ROLE).inc()
            elif isinstance(typed, Impression):
                if serving.impression(typed, source):
                    triggers[typed.user_id] = source  # a list without what they passed over
                else:
                    ctx.metrics.duplicates.labels(msg.topic, ROLE).inc()
            elif serving.review(typed, source):
                # The answer is to the review as its author sent it, before the encoder.
                triggers[typed.user_id] = typed.trigger
                self.sink.mark("users", [typed.user_id])
                described.add(typed.user_id)
            else:
                ctx.metrics.duplicates.labels(msg.topic, ROLE).inc()
        return forgotten

    def _forget(self, user: str, request: Trigger) -> None:
        """Erase a user from everything this role holds, and say so in the audit topic."""
        ctx = self.ctx
        erasure = self.serving.forget(user, at=request.ts)
        erased = erasure.erased
        self.sink.delete("users", user)
        erased.append("qdrant user point")
        ctx.output.send(ctx.topics.recommendations, None, key=user.encode())
        erased.append("recommendations (tombstone)")
        ctx.output.send(ctx.topics.profiles, None, key=user.encode())
        erased.append("readable profile (tombstone)")
        for key, partition in erasure.reviews:
            ctx.output.send(ctx.topics.reviews_encoded, None, key=key, partition=partition)
        if erasure.reviews:
            erased.append(f"{len(erasure.reviews)} review vector(s) (tombstones; item vectors recomputed)")
        audit = Audit(user_id=user, role=ROLE, erased=erased, request=request, completed_at=time.time())
        ctx.output.send(ctx.topics.audit, orjson.dumps(audit.model_dump()), key=user.encode())
        ctx.metrics.forgotten.labels(ROLE).inc()
        log.info("forgot user %s: %s", user, ", ".join(erased))

    def _on_withdrawn(self, withdrawn: dict[str, Trigger]) -> None:
        """Items left the catalog: renew, in the background, every list that named one."""
        task = asyncio.ensure_future(self._renew(withdrawn))
        self._renewals.add(task)
        task.add_done_callback(self._renewals.discard)

    async def _renew(self, withdrawn: dict[str, Trigger]) -> None:
        """Rank again each user of this process whose last list named a withdrawn item; the new
        list answers the withdrawal (its trigger), so the lag from it is measured too."""
        async with self._lock:
            triggers: dict[str, Trigger] = {}
            for user, items in self.serving.online.lists.items():
                named = next((i for i in items if i in withdrawn), None)
                # Users of partitions this process owns.
                if named is not None and self.profiles.owns(str(user)):
                    triggers[str(user)] = withdrawn[named]
            if triggers:
                log.info("renewing %d list(s) that named %d withdrawn item(s)", len(triggers), len(withdrawn))
                await self._recommend(triggers)
                await self.ctx.output.flush()

    def _describe(self, users: set[str]) -> None:
        """Publish the readable profile of each user a review changed (topic `profiles`)."""
        rec, wording = self.rec, self.rec.ranker.wording
        for user in sorted(users):
            profile = rec.profiles.get(user)
            if profile is None:
                continue
            view = portrait(profile, lambda item: rec.index.payload(item).get("title"), self.labels, wording)
            self.ctx.output.send(self.ctx.topics.profiles, orjson.dumps(view.model_dump()), key=user.encode())

    async def _recommend(self, triggers: dict[str, Trigger]) -> None:
        """Rank and send, a slice of users at a time: a large batch (a backlog) answers its
        first users as soon as they are ranked, not once the whole batch is."""
        ctx = self.ctx
        users = list(triggers)
        model = self.index.model_info()
        for start in range(0, len(users), RANK_SLICE):
            if start:
                await asyncio.sleep(0)  # let fetches and feeds run between slices
            chunk = users[start : start + RANK_SLICE]
            started = time.perf_counter()
            lists = self.serving.answer(chunk, ctx.settings.recommender.k)
            ctx.metrics.ranking_seconds.observe(time.perf_counter() - started)
            now = time.time()
            for user, scored in zip(chunk, lists, strict=True):
                trigger = triggers[user]
                items = [RecommendedItem(item_id=s.item_id, score=s.score, reasons=s.reasons) for s in scored]
                out = Recommendation(
                    user_id=user, items=items, generated_at=now, trigger=trigger, model=model
                )
                ctx.output.send(ctx.topics.recommendations, orjson.dumps(out.model_dump()), key=user.encode())
                ctx.metrics.event_to_recommendation.labels(trigger.topic).observe(max(0.0, now - trigger.ts))
            ctx.metrics.recommendations.inc(len(chunk))
        ctx.metrics.online_hr.set(self.serving.online.rates.hr)
        ctx.metrics.online_ndcg.set(self.serving.online.rates.ndcg)

    # -- checkpoints ----------------------------------------------------------------

    async def _on_timer(self) -> None:
        async with self._lock:
            await self._checkpoint_due()

    async def _checkpoint_due(self) -> None:
        """A checkpoint, if the last is the checkpoint interval old (under the lock)."""
        if time.monotonic() - self._last_checkpoint >= self.ctx.settings.recommender.checkpoint_interval_s:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Counts, offsets and everything produced become durable; then the offsets are committed.

        The state is snapshotted here, under the processing lock (a forked child writes it):
        events flow on while the outputs (lists, profiles' changelog) are flushed and the file is
        written and synced, and the offsets it covers are committed once it is in place.
        """
        self._last_checkpoint = time.monotonic()
        if not self.acks.holding:
            return
        serving = self.serving
        state = {**serving.state(), "qdrant_pending": self.sink.pending()}
        offsets = dict(serving.offsets)
        paused = await self.acks.snapshot(
            state, offsets, before=self.ctx.output.flush, landed=lambda: self.consumer.commit(offsets)
        )
        self.ctx.metrics.checkpoint_pause.labels(ROLE).observe(paused)
