"""The recommender role: keeps user profiles and the item index, and produces recommendations.

* A global feed reads every partition of `vectors` (item text and CF vectors, user
  CF vectors) and `reviews-encoded` (review vectors describe their item) into the
  in-memory index; Qdrant receives the same vectors as a durable, queryable view.
* An agent reads `clicks` and `reviews-encoded` for the partitions it owns, updates
  each user's profile (a changelog-backed table) and, once per user per batch,
  produces a recommendation: bursts coalesce into one update.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import faust
import numpy as np
import orjson
from aiokafka import ConsumerRecord
from faust.streams import _current_event, current_event

from streamrec.model.dedupe import Deduplicator, fingerprint
from streamrec.model.errors import InvalidEvent
from streamrec.model.evaluation import RollingHitRate
from streamrec.model.profile import UserProfile
from streamrec.model.recommender import Recommender
from streamrec.model.schemas import Audit, ModelInfo, Recommendation, RecommendedItem, Trigger
from streamrec.streams.checkpoint import CheckpointStore
from streamrec.streams.context import Context
from streamrec.streams.feed import GlobalFeed
from streamrec.streams.messages import parse_encoded_review, parse_vector
from streamrec.streams.sink import Point, QdrantSink
from streamrec.streams.topics import aiokafka_config

__all__ = ["RecommenderRole", "TableProfiles"]

log = logging.getLogger(__name__)
ROLE = "recommender"
#: Users whose last list is kept to score the next interaction (online HR@10).
MAX_REMEMBERED_LISTS = 100_000
#: Users ranked and answered at a time within one batch.
RANK_SLICE = 64


def _make_current(event: faust.types.EventT | None) -> None:
    """Make `event` faust's current event in this task only.

    A table write goes to the changelog partition of the current event, and a batch
    from `noack_take` has none. faust reads it from a context variable, which is
    per task; the stream's own attribute is shared with the task filling the batch
    buffer, so it must not be touched.
    """
    _current_event.set(weakref.ref(event) if event is not None else None)


def _item_of(raw: bytes) -> str | None:
    try:
        value = orjson.loads(raw)
        return str(value["item_id"]) if isinstance(value, dict) else None
    except (orjson.JSONDecodeError, KeyError):
        return None


class TableProfiles(MutableMapping[str, UserProfile]):
    """User profiles in a faust Table (changelog-backed, partitioned by user), with a cache.

    Profiles are kept deserialized for the most recently used users, and a batch writes
    each changed profile to the table once, at `flush`, under the event that last changed
    it (its partition is the changelog partition): one changelog message per user per
    batch instead of one per event.
    """

    def __init__(self, table: faust.Table, cache_size: int = 100_000, **params: Any) -> None:
        self.table = table
        self.params = params
        self.cache_size = cache_size
        self._cache: OrderedDict[str, UserProfile] = OrderedDict()
        self._dirty: dict[str, faust.types.EventT | None] = {}

    def __getitem__(self, user: str) -> UserProfile:
        profile = self._cache.get(user)
        if profile is None:
            raw = self.table.get(user.encode())
            if raw is None:
                raise KeyError(user)
            profile = UserProfile.from_bytes(raw, **self.params)
            self._remember(user, profile)
        return profile

    def __setitem__(self, user: str, profile: UserProfile) -> None:
        self._remember(user, profile)
        self._dirty[user] = current_event()

    def __delitem__(self, user: str) -> None:
        cached = self._cache.pop(user, None)
        self._dirty.pop(user, None)
        if user.encode() in self.table:
            del self.table[user.encode()]
        elif cached is None:
            raise KeyError(user)

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and (user in self._cache or user.encode() in self.table)

    def __iter__(self) -> Iterator[str]:
        return (key.decode() for key in self.table.keys())

    def __len__(self) -> int:
        return len(self.table)

    def _remember(self, user: str, profile: UserProfile) -> None:
        self._cache[user] = profile
        self._cache.move_to_end(user)
        while len(self._cache) > self.cache_size:
            old, kept = self._cache.popitem(last=False)
            if old in self._dirty:  # never drop an unwritten change
                self._cache[old] = kept
                break

    def flush(self) -> None:
        """Write every changed profile to the table (and so to its changelog)."""
        dirty, self._dirty = self._dirty, {}
        for user, event in dirty.items():
            profile = self._cache.get(user)
            if profile is None:
                continue
            _make_current(event)
            self.table[user.encode()] = profile.to_bytes()
        _make_current(None)


class RecommenderRole:
    """Owns the recommender state, the Qdrant view, and recommendations."""

    def __init__(self, ctx: Context, app: faust.App, text_dim: int) -> None:
        self.ctx = ctx
        settings = ctx.settings
        cfg = settings.recommender
        cf_dim = settings.cf.n_factors + 1
        half_life = cfg.half_life_days * 86_400.0
        self.table = app.Table(
            f"{settings.topic_prefix}profiles",
            default=None,
            partitions=settings.partitions,
            # bytes in, bytes out: the changelog holds the user id and the profile as written
            key_type=bytes,
            value_type=bytes,
        )
        profiles = TableProfiles(self.table, half_life_s=half_life)
        self.rec = Recommender(
            text_dim,
            cf_dim,
            profiles=profiles,
            half_life_s=half_life,
            n_candidates=cfg.n_candidates,
            mmr_lambda=cfg.mmr_lambda,
        )
        self.sink = QdrantSink(settings, ctx.metrics, {"text": (text_dim, "cosine"), "cf": (cf_dim, "dot")})
        self.feed = GlobalFeed(
            [ctx.topics.vectors, ctx.topics.reviews_encoded],
            self._on_vectors,
            aiokafka_config(settings, ctx.bootstrap),
            ctx.metrics,
            ROLE,
            # Short handler runs: every second brings a vector per changed item, and events
            # wait while a batch of them is applied.
            max_records=500,
        )
        self.versions = {"cf": "", "encoder": ""}
        self._backend = "memory"
        self._opening: asyncio.Future[None] | None = None
        # Online prequential quality: was the item a user took in the list we last gave them?
        self.quality = RollingHitRate(window=1000, k=10)
        self._last_lists: OrderedDict[str, list[str]] = OrderedDict()
        self._flushing = asyncio.Lock()
        self.seen = Deduplicator()
        self.app = app
        self.store = CheckpointStore(
            settings.data_dir / f"{settings.topic_prefix}recommender" / "checkpoint.pkl"
        )
        self.offsets: dict[str, int] = {}
        self._pending: list[faust.types.EventT] = []
        self._last_checkpoint = time.monotonic()
        self._lock = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None
        saved = self.store.load()
        if saved is not None:
            self.rec.restore_aggregates(saved.model["aggregates"])
            self.seen = saved.model["seen"]
            self.quality = saved.model["quality"]
            self._last_lists = saved.model["last_lists"]
            self.sink.restore(saved.model.get("qdrant_pending", {}))
            self.offsets = saved.offsets
        # Every review's vector by its key, to take it back out of its item if its author
        # is forgotten (float16: half the memory, ample for a mean of unit vectors).
        self._reviews: dict[bytes, tuple[int, str, float | None, np.ndarray]] = {}
        self._reviews_of: dict[str, set[bytes]] = {}

    def install(self, app: faust.App) -> None:
        ctx = self.ctx
        source = app.topic(
            ctx.topics.clicks,
            ctx.topics.reviews_encoded,
            ctx.topics.forget,
            value_serializer="raw",
            key_serializer="raw",
        )
        app.agent(source, name=f"{ctx.settings.topic_prefix}recommender")(self._agent)
        ctx.sources.update(
            {t: ROLE for t in (ctx.topics.clicks, ctx.topics.reviews_encoded, ctx.topics.forget)}
        )
        app.service(self.feed)
        app.timer(ctx.settings.qdrant_flush_s, name="qdrant-flush")(self._flush)
        app.timer(1.0, name="recommender-checkpoint")(self._on_timer)
        ctx.ready_checks[ROLE] = self.feed.caught_up.is_set

    async def open(self) -> None:
        if self.offsets:  # logged here: logging is set up once the worker starts
            log.info("recommender counts restored (%d items)", len(self.rec.popularity))
        self._opening = asyncio.ensure_future(self._open_qdrant())

    async def _open_qdrant(self) -> None:
        await self.sink.start()
        retrieval = self.ctx.settings.recommender.retrieval
        if retrieval == "qdrant" or (retrieval == "auto" and self.ctx.settings.qdrant_url):
            # Candidates from Qdrant's HNSW (a server, for catalogs beyond an exact scan);
            # the Qdrant view trails the in-memory index by at most one flush (2 s).
            self.rec.ranker.searcher = self.sink.collections["items"]
            self._backend = "qdrant"
        log.info("Qdrant open; candidate search: %s", self._backend)

    async def close(self) -> None:
        await self._on_timer(force=True)
        if self._writing is not None:
            await self._writing
        if self.sink.ready:
            await self._flush()
        elif self._opening is not None:
            self._opening.cancel()
        await self.sink.close()

    # -- the index, from the global feed ---------------------------------------------

    async def _on_vectors(self, records: Sequence[ConsumerRecord]) -> None:
        rec, topics = self.rec, self.ctx.topics
        cf_items: dict[str, np.ndarray] = {}
        cf_users: dict[str, np.ndarray] = {}
        for record in records:
            if record.topic == topics.reviews_encoded:
                self._on_review_vector(record)
                continue
            if record.value is None:
                # A tombstone: a forgotten user's CF vector.
                kind, _, rest = (record.key or b"").decode("utf-8", "replace").partition(":")
                name, _, id = rest.partition(":")
                if kind == "user" and name == "cf":
                    rec.user_cf.pop(id, None)
                    cf_users.pop(id, None)
                continue
            msg = parse_vector(record.value)
            if msg["name"] == "text" and msg["kind"] == "item":
                rec.on_item(msg["id"], msg.get("title") or msg["id"], msg["v"], msg["ts"])
                self.sink.mark("items", [msg["id"]])
                self.versions["encoder"] = msg["version"]
            elif msg["name"] == "cf":
                (cf_items if msg["kind"] == "item" else cf_users)[msg["id"]] = msg["v"]
                self.versions["cf"] = msg["version"]
        if cf_items:
            rec.on_item_cf(list(cf_items), np.stack(list(cf_items.values())))
            self.sink.mark("items", cf_items.keys())  # type: ignore[arg-type]
        if cf_users:
            rec.on_user_cf(list(cf_users), np.stack(list(cf_users.values())))
            self.sink.mark("users", cf_users.keys())  # type: ignore[arg-type]

    def _on_review_vector(self, record: ConsumerRecord) -> None:
        """Fold a review into its item's text vector, or take it back on a tombstone."""
        key = record.key or b""
        if record.value is None:
            kept = self._reviews.pop(key, None)
            if kept is not None:
                _, item, rating, vector = kept
                self.rec.on_item_review_removed(item, vector.astype(np.float32), rating)
                self.sink.mark("items", [item])
            return
        review = parse_encoded_review(record.value)
        if key in self._reviews:
            return  # the same review again (a replay): already folded in
        self._reviews[key] = (
            record.partition,
            review.item_id,
            review.rating,
            review.vector.astype(np.float16),
        )
        self._reviews_of.setdefault(review.user_id, set()).add(key)
        self.rec.on_item_review(review.item_id, review.vector, review.rating)
        self.sink.mark("items", [review.item_id])
        self.versions["encoder"] = review.version

    # -- users, from their partitions -----------------------------------------------

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        cfg = self.ctx.settings.recommender
        async for events in stream.noack_take(cfg.batch_size, within=cfg.coalesce_ms / 1000):
            async with self._lock:
                await self.handle(events, stream)
                self._pending.extend(events)
                if (
                    time.monotonic() - self._last_checkpoint
                    >= self.ctx.settings.recommender.checkpoint_interval_s
                ):
                    await self._checkpoint()

    async def _on_timer(self, force: bool = False) -> None:
        if (
            force
            or time.monotonic() - self._last_checkpoint >= self.ctx.settings.recommender.checkpoint_interval_s
        ):
            async with self._lock:
                await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Counts, offsets and everything produced become durable; then faust may commit.

        The state is serialized here, under the processing lock, and written to disk in the
        background: events flow on while the file is synced, and the events it covers are
        acknowledged once it is.
        """
        self._last_checkpoint = time.monotonic()
        if not self._pending:
            return
        await self.ctx.output.flush()
        await self.app.producer.flush()  # the profile table's changelog
        state = {
            "aggregates": self.rec.aggregates(),
            "seen": self.seen,
            "quality": self.quality,
            "last_lists": self._last_lists,
            "qdrant_pending": self.sink.pending(),
        }
        blob = self.store.dumps(state, self.offsets)
        pending, self._pending = self._pending, []
        previous = self._writing
        self._writing = asyncio.ensure_future(self._write(blob, pending, previous))

    async def _write(
        self, blob: bytes, covered: list[faust.types.EventT], previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await previous  # checkpoints land in the order they were taken
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.store.write, blob)
        except OSError as exc:
            # The next checkpoint holds this state too: its events wait for that one.
            log.error("checkpoint not written, retrying with the next one: %s", exc)
            self._pending[:0] = covered
            return
        for event in covered:
            event.ack()

    async def handle(self, events: Sequence[faust.types.EventT], stream: faust.StreamT[Any]) -> None:
        ctx, rec, topics = self.ctx, self.rec, self.ctx.topics
        started = time.perf_counter()
        triggers: dict[str, Trigger] = {}
        clicks = [e for e in events if e.message.topic == topics.clicks and e.value is not None]
        if any(_item_of(e.value) not in rec.index for e in clicks):
            # Vectors of a just-published item may be a few milliseconds behind in the feed.
            await self.feed.catch_up(timeout=0.5)
        forgotten = False
        for event in events:
            msg = event.message
            ctx.metrics.events_consumed.labels(msg.topic, ROLE).inc()
            tp = f"{msg.topic}:{msg.partition}"
            # Events below the checkpoint's offset are already counted (a replay after a
            # restart); profiles know for themselves which events they hold.
            fresh = msg.offset >= self.offsets.get(tp, 0)
            self.offsets[tp] = max(self.offsets.get(tp, 0), msg.offset + 1)
            source = (tp, msg.offset)
            if event.value is None:
                continue
            _make_current(event)
            trigger = Trigger(topic=msg.topic, partition=msg.partition, offset=msg.offset, ts=msg.timestamp)
            if msg.topic == topics.forget:
                try:
                    user = ctx.parser.forget(event.value).user_id
                except InvalidEvent:
                    continue  # the CF role dead-letters invalid requests
                triggers.pop(user, None)
                self._forget(user, trigger)
                forgotten = True
                continue
            if msg.topic == topics.clicks:
                try:
                    click = ctx.parser.click(event.value)
                except InvalidEvent:
                    continue  # the CF role dead-letters invalid clicks
                if fresh and self.seen.check(
                    fingerprint("c", click.user_id, click.item_id, click.event, click.ts)
                ):
                    ctx.metrics.duplicates.labels(msg.topic, ROLE).inc()
                    continue
                if fresh:
                    self._score(click.user_id, click.item_id)
                rec.on_click(
                    click.user_id, click.item_id, click.event, click.ts, source=source, aggregates=fresh
                )
                user = click.user_id
            else:
                try:
                    review = parse_encoded_review(event.value)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.error("unreadable message in %s: %s", msg.topic, exc)
                    continue
                if fresh and self.seen.check(b"r" + (msg.key or b"")):
                    ctx.metrics.duplicates.labels(msg.topic, ROLE).inc()
                    continue
                if fresh:
                    self._score(review.user_id, review.item_id)
                rec.on_review(
                    review.user_id,
                    review.item_id,
                    review.rating,
                    review.ts,
                    review.vector,
                    source=source,
                    aggregates=fresh,
                )
                user = review.user_id
                trigger = review.trigger
            triggers[user] = trigger
            self.sink.mark("users", [user])
        _make_current(None)
        self.rec.profiles.flush()  # type: ignore[attr-defined]
        if triggers:
            await self._recommend(triggers)
        await ctx.output.flush()
        if forgotten:
            await self._flush()  # the Qdrant deletions, now rather than at the next tick
        ctx.metrics.batch_events.labels(ROLE).observe(len(events))
        ctx.metrics.batch_seconds.labels(ROLE).observe(time.perf_counter() - started)

    def _forget(self, user: str, request: Trigger) -> None:
        """Erase a user from everything this role holds, and say so in the audit topic."""
        ctx = self.ctx
        erased = []
        if self.rec.forget(user):
            erased += ["profile (table tombstone)", "cf vector", "popularity contributions"]
        if self._last_lists.pop(user, None) is not None:
            erased.append("last recommendation")
        self.sink.delete("users", user)
        erased.append("qdrant user point")
        ctx.output.send(ctx.topics.recommendations, None, key=user.encode())
        erased.append("recommendations (tombstone)")
        keys = self._reviews_of.pop(user, set())
        for key in sorted(keys):
            partition = self._reviews[key][0] if key in self._reviews else None
            ctx.output.send(ctx.topics.reviews_encoded, None, key=key, partition=partition)
        if keys:
            erased.append(f"{len(keys)} review vector(s) (tombstones; item vectors recomputed)")
        audit = Audit(user_id=user, role=ROLE, erased=erased, request=request, completed_at=time.time())
        ctx.output.send(ctx.topics.audit, orjson.dumps(audit.model_dump()), key=user.encode())
        ctx.metrics.forgotten.labels(ROLE).inc()
        log.info("forgot user %s: %s", user, ", ".join(erased))

    async def _recommend(self, triggers: dict[str, Trigger]) -> None:
        """Rank and send, a slice of users at a time: a large batch (a backlog) answers its
        first users as soon as they are ranked, not once the whole batch is."""
        ctx = self.ctx
        users = list(triggers)
        model = ModelInfo(cf=self.versions["cf"] or "none", encoder=self.versions["encoder"] or "none")
        for start in range(0, len(users), RANK_SLICE):
            if start:
                await asyncio.sleep(0)  # let fetches and feeds run between slices
            chunk = users[start : start + RANK_SLICE]
            started = time.perf_counter()
            lists = self.rec.recommend(chunk, ctx.settings.recommender.k)
            ctx.metrics.qdrant_search_seconds.labels(self._backend).observe(time.perf_counter() - started)
            now = time.time()
            for user, scored in zip(chunk, lists, strict=True):
                trigger = triggers[user]
                out = Recommendation(
                    user_id=user,
                    items=[
                        RecommendedItem(item_id=s.item_id, score=s.score, reasons=s.reasons) for s in scored
                    ],
                    generated_at=now,
                    trigger=trigger,
                    model=model,
                )
                ctx.output.send(ctx.topics.recommendations, orjson.dumps(out.model_dump()), key=user.encode())
                self._remember(user, [s.item_id for s in scored])
                ctx.metrics.event_to_recommendation.labels(trigger.topic).observe(max(0.0, now - trigger.ts))
            ctx.metrics.recommendations.inc(len(chunk))

    def _score(self, user: str, item: str) -> None:
        last = self._last_lists.get(user)
        if last is not None:
            self.quality.observe(last, item)
            self.ctx.metrics.online_hr.set(self.quality.hr)
            self.ctx.metrics.online_ndcg.set(self.quality.ndcg)

    def _remember(self, user: str, items: list[str]) -> None:
        self._last_lists[user] = items
        self._last_lists.move_to_end(user)
        if len(self._last_lists) > MAX_REMEMBERED_LISTS:
            self._last_lists.popitem(last=False)

    # -- Qdrant ---------------------------------------------------------------------

    def _points(self, kind: str, ids: list[str]) -> list[Point]:
        rec = self.rec
        points: list[Point] = []
        if kind == "items":
            texts = rec.index.get("text", ids)
            cfs = rec.index.get("cf", ids)
            for id in ids:
                if id in texts or id in cfs:
                    payload = {
                        "title": rec.index.payload(id).get("title"),
                        "encoder": self.versions["encoder"],
                    }
                    points.append((id, {"text": texts.get(id), "cf": cfs.get(id)}, payload))
        else:
            for id in ids:
                profile = rec.profiles.get(id)
                text = profile.text_vector() if profile is not None else None
                cf = rec.user_cf.get(id)
                if text is not None or cf is not None:
                    points.append((id, {"text": text, "cf": cf}, {"encoder": self.versions["encoder"]}))
        return points

    async def _flush(self) -> None:
        if not self.sink.ready:
            return  # Qdrant not reachable yet: the dirty sets wait
        async with self._flushing:
            if self.sink.backlog:
                await self.sink.flush(self._points)
        self.ctx.metrics.model_entities.labels(ROLE, "items").set(len(self.rec.index))
        self.ctx.metrics.model_entities.labels(ROLE, "users_cf").set(len(self.rec.user_cf))
        await asyncio.sleep(0)
