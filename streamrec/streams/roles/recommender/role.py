"""The recommender role: keeps user profiles and the item index, and produces recommendations.

* A global feed reads every partition of `vectors` and `reviews-encoded` into the
  in-memory index, and Qdrant receives the same vectors (`IndexFeed`).
* An agent reads `clicks`, `reviews-encoded` and `forget` for the partitions it owns,
  parses each message once and hands it to `streamrec.model.serving.service.Serving`, which
  updates each user's profile (a changelog-backed table) and says whose list to renew;
  once per user per batch the role ranks and produces a recommendation, so bursts coalesce.
  The role itself is the loop, its checkpoint and its outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

import faust
import orjson
from faust.streams import Stream
from faust.types import EventT, StreamT

from streamrec.model.cf.factors import vector_size
from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Audit, Click, Impression, Recommendation, RecommendedItem, Trigger
from streamrec.model.serving.recommender import Recommender
from streamrec.model.serving.service import Serving
from streamrec.model.text.reviews import EncodedReview
from streamrec.model.users.portrait import portrait
from streamrec.model.users.profile import UserProfile
from streamrec.streams.context import Context
from streamrec.streams.forked import InChild
from streamrec.streams.kafka.checkpoint import AckAfterCheckpoint, CheckpointStore
from streamrec.streams.kafka.gapless import Gapless
from streamrec.streams.messages import is_version_marker, parse_encoded_review
from streamrec.streams.roles.index.role import IndexFeed
from streamrec.streams.roles.recommender.profiles import TableProfiles
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import TimedSearch
from streamrec.streams.vectors.sink import QdrantSink

__all__ = ["RecommenderRole", "aspect_labels", "make_recommender", "parse_user_event"]

log = logging.getLogger(__name__)
ROLE = "recommender"
#: Users ranked and answered at a time within one batch.
RANK_SLICE = 64


class RecommenderRole:
    """Owns the recommender state, the Qdrant view, and recommendations."""

    def __init__(self, ctx: Context, app: faust.App, text_dim: int) -> None:
        self.ctx = ctx
        self.app = app
        settings = ctx.settings
        cfg = settings.recommender
        half_life = cfg.half_life_days * 86_400.0
        self.table = app.Table(
            f"{settings.topic_prefix}profiles",
            default=None,
            partitions=settings.partitions,
            # bytes in, bytes out: the changelog holds the user id and the profile as written
            key_type=bytes,
            value_type=bytes,
        )
        self.profiles = TableProfiles(self.table, half_life_s=half_life)
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
        self.gapless = Gapless(app, ctx.clients, ctx.metrics, ROLE, lambda: self.serving.offsets)
        self.index = IndexFeed(ctx, self.serving, self.sink, ROLE, on_withdrawn=self._on_withdrawn)
        self._renewals: set[asyncio.Task[None]] = set()
        self.acks = AckAfterCheckpoint(self.store)
        self._last_checkpoint = time.monotonic()
        self._lock = asyncio.Lock()
        #: The partitions read since the start (the first offset of each is logged).
        self._read_from: set[tuple[str, int]] = set()

    def install(self, app: faust.App) -> None:
        ctx = self.ctx
        inputs = (ctx.topics.clicks, ctx.topics.reviews_encoded, ctx.topics.forget)
        source = app.topic(*inputs, value_serializer="raw", key_serializer="raw")
        app.agent(source, name=f"{ctx.settings.topic_prefix}recommender")(self._agent)
        ctx.sources.update(dict.fromkeys(inputs, ROLE))
        app.service(self.index.feed)  # type: ignore[arg-type]  # faust's stubs take classes; instances work
        app.timer(ctx.settings.qdrant_flush_s, name="qdrant-flush")(self.index.flush)
        app.timer(1.0, name="recommender-checkpoint")(self._on_timer)
        ctx.ready_checks[ROLE] = self.index.feed.caught_up.is_set

    async def open(self) -> None:
        if self._restored:  # logged here: logging is set up once the worker starts
            log.info(
                "recommender counts restored (%d items), up to %s",
                len(self.rec.popularity),
                ", ".join(f"{tp} {offset}" for tp, offset in sorted(self._restored.items())),
            )
        self.index.open()

    async def close(self) -> None:
        for task in list(self._renewals):
            task.cancel()  # lists renewed for withdrawn items: the next owner renews them again
        await self._on_timer(force=True)
        await self.acks.drain()
        await self.fits.close()
        await self.gapless.close()
        await self.index.close()

    # -- users, from their partitions -----------------------------------------------

    async def _agent(self, stream: StreamT[Any]) -> None:
        assert isinstance(stream, Stream)  # StreamT does not declare the batching methods
        cfg = self.ctx.settings.recommender
        async for events in stream.noack_take(cfg.batch_size, within=cfg.coalesce_ms / 1000):
            async with self._lock:
                events = await self.gapless.complete(events)
                await self.handle(events)
                self.acks.hold(events)
                if time.monotonic() - self._last_checkpoint >= cfg.checkpoint_interval_s:
                    await self._checkpoint()

    def _parse(self, event: EventT[Any]) -> Click | Impression | EncodedReview | str | None:
        msg = event.message
        return parse_user_event(self.ctx, msg.topic, event.value, msg.key)

    async def handle(self, events: Sequence[EventT[Any]]) -> None:
        """Apply a batch of events and answer each user it touched, once."""
        ctx = self.ctx
        started = time.perf_counter()
        parsed = [(event, self._parse(event)) for event in events]
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
        ctx.metrics.batch_events.labels(ROLE).observe(len(events))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def _apply(
        self,
        parsed: Sequence[tuple[EventT[Any], Click | Impression | EncodedReview | str | None]],
        triggers: dict[str, Trigger],
        described: set[str],
    ) -> bool:
        """Apply each parsed event in order: the users to answer go to `triggers` (with what
        triggered their list), those whose profile to describe to `described`. True if a user
        was forgotten."""
        ctx, serving = self.ctx, self.serving
        forgotten = False
        for event, typed in parsed:
            msg = event.message
            ctx.metrics.events_consumed.labels(msg.topic, ROLE).inc()
            source = Trigger(topic=msg.topic, partition=msg.partition, offset=msg.offset, ts=msg.timestamp)
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
                # Users of partitions this process owns: their profiles are in its table (the table,
                # not the cache of profiles, which may still hold users of partitions it gave up).
                if named is not None and str(user).encode() in self.table:
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

    async def _on_timer(self, force: bool = False) -> None:
        interval = self.ctx.settings.recommender.checkpoint_interval_s
        if force or time.monotonic() - self._last_checkpoint >= interval:
            async with self._lock:
                await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Counts, offsets and everything produced become durable; then faust may commit.

        The state is snapshotted here, under the processing lock (a forked child writes it):
        events flow on while the outputs are flushed and the file is written and synced, and
        the events it covers are acknowledged once it is in place.
        """
        self._last_checkpoint = time.monotonic()
        if not self.acks.holding:
            return
        serving = self.serving
        state = {**serving.state(), "qdrant_pending": self.sink.pending()}
        paused = await self.acks.snapshot(state, serving.offsets, before=self._flush_outputs)
        self.ctx.metrics.checkpoint_pause.labels(ROLE).observe(paused)

    async def _flush_outputs(self) -> None:
        """What the events of a checkpoint produced is delivered before the checkpoint lands."""
        await self.ctx.output.flush()
        await self.app.producer.flush()  # the profile table's changelog


def aspect_labels(settings: Settings) -> dict[str, str]:
    """What each aspect is called in the deployment's language."""
    return {a.name: a.label(settings.language) for a in settings.aspects()}


def make_recommender(
    settings: Settings, text_dim: int, profiles: MutableMapping[str, UserProfile] | None = None
) -> Recommender:
    """The recommender as the settings describe it (the role's, and the API's copy)."""
    cfg = settings.recommender
    return Recommender(
        text_dim,
        vector_size(settings.cf.n_factors),
        profiles=profiles,
        half_life_s=cfg.half_life_days * 86_400.0,
        opinions=settings.opinions,
        language=settings.language,
        labels=aspect_labels(settings),
        n_candidates=cfg.n_candidates,
        mmr_lambda=cfg.mmr_lambda,
        rules=settings.list_rules(),
        modalities=settings.modalities,
        new_items=cfg.new_items,
        learn_blend=cfg.learn_blend,
        item_model=cfg.item_model_items > 0,
        item_model_every=cfg.item_model_every,
        item_model_items=max(cfg.item_model_items, 1),
    )


def parse_user_event(
    ctx: Context, topic: str, raw: bytes | None, key: bytes | None
) -> Click | Impression | EncodedReview | str | None:
    """A user event's typed content (a forget request: its user id), or None if there is none.

    Invalid inputs are the CF role's to dead-letter; here they are passed over.
    """
    if raw is None:
        return None
    topics = ctx.topics
    try:
        if topic == topics.clicks:
            return ctx.parser.click(raw)
        if topic == topics.forget:
            return ctx.parser.forget(raw).user_id
        if is_version_marker(raw):
            return None
        review = parse_encoded_review(raw, key or b"")
        # Read again by a new encoder: its author's profile holds it already.
        return None if review.reencoded else review
    except InvalidEvent:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.error("unreadable message in %s: %s", topic, exc)
        return None
