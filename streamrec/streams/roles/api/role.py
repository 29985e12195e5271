"""The API role: answers HTTP requests for any user, from a copy of the recommender's state.

The recommender role holds each user on the process that owns their partition; an API process
must answer for every user. So the role keeps its own copy, read from every partition of the
topics the recommenders read (global feeds, outside any consumer group): the item index from
`vectors` and `reviews-encoded`, profiles and counts from `clicks`, `reviews-encoded` and `forget`
(applied by the same `Serving` code as the recommender's), and the latest published list per user
from the compacted `recommendations`. It writes to Kafka only its snapshots, so it scales by adding
processes. It checkpoints its copy with the offsets it has read up to, in its state directory,
and a restarted process reads the event topics on from there (the compacted vector and list topics
again from the beginning). Every `api_snapshot_interval_s`, and as it stops, it publishes that
checkpoint to the compacted `api-snapshots` (`streamrec.streams.kafka.snapshots`): a new process
with no checkpoint of its own (and no `api_seed`) starts from the latest there, and only one that
finds none reads everything from the beginning. `/healthz` says which until it has caught up.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import faust
from aiohttp import web
from aiokafka import ConsumerRecord

from streamrec.model.events.offsets import partition_key
from streamrec.model.events.schemas import (
    Click,
    Impression,
    ReadableProfile,
    Recommendation,
    RecommendedItem,
    Trigger,
)
from streamrec.model.serving.service import Serving
from streamrec.model.text.reviews import EncodedReview
from streamrec.model.users.portrait import portrait
from streamrec.streams.context import Context
from streamrec.streams.errors import InfrastructureError, StateInUseError
from streamrec.streams.forked import InChild
from streamrec.streams.kafka.checkpoint import Checkpoint, CheckpointStore, CheckpointWriter
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.kafka.output import Output
from streamrec.streams.kafka.snapshots import SnapshotPublisher, read_snapshot
from streamrec.streams.roles.api.answers import Health, SimilarItems
from streamrec.streams.roles.api.http import create_api
from streamrec.streams.roles.index.role import IndexFeed
from streamrec.streams.roles.recommender.shared import aspect_labels, make_recommender, parse_user_event
from streamrec.streams.settings import Settings

__all__ = ["ApiRole"]

log = logging.getLogger(__name__)
ROLE = "api"
#: How long a starting API process waits for one ending that holds its state directory.
CLAIM_WAIT_S = 3.0


class ApiRole:
    """Keeps a copy of the recommender's state from the topics, and serves it over HTTP."""

    def __init__(self, ctx: Context, text_dim: int) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.rec = make_recommender(settings, text_dim)
        # As the recommender's: the item model's refits in a child process, requests not waiting.
        self.fits = InChild("item model fit")
        self.rec.fit_elsewhere = self.fits
        #: The latest list published per user, as published.
        self.latest: dict[str, bytes] = {}
        #: Next offset to read of each partition of `recommendations`.
        self._lists_at: dict[str, int] = {}
        topics = ctx.topics
        self.store = _claim(settings)
        secret = (settings.api_secret() or "").encode()
        saved = self.store.load() if self.store is not None else None
        source = "its checkpoint"
        if saved is None and settings.api_seed is not None:
            saved, source = _seed(settings.api_seed), f"the seed {settings.api_seed}"
        elif saved is None and settings.api_snapshot_interval_s > 0:
            saved, source = _from_topic(ctx, secret), f"the latest snapshot on {topics.api_snapshots}"
        self._restore(saved, source)
        self.labels = aspect_labels(settings)
        self.index = IndexFeed(ctx, self.serving, None, ROLE)
        self.events = GlobalFeed(
            [topics.clicks, topics.reviews_encoded, topics.forget],
            self._on_events,
            ctx.clients,
            ctx.metrics,
            ROLE,
            resume_from=lambda: dict(self.serving.offsets),
        )
        self.lists = GlobalFeed(
            [topics.recommendations],
            self._on_lists,
            ctx.clients,
            ctx.metrics,
            ROLE,
            resume_from=lambda: dict(self._lists_at),
        )
        self.acks = CheckpointWriter(self.store) if self.store is not None else None
        #: Read since the last checkpoint; a forget request makes the next one due at once.
        self._changed = False
        self._last_checkpoint = time.monotonic()
        self.snapshots = None
        if self.store is not None and settings.api_snapshot_interval_s > 0:
            remembered = self.store.path.parent / "snapshot.json"
            # A producer of its own: a role beside it in the process that flushes the shared one
            # after each batch would otherwise wait for a snapshot's chunks.
            output = Output(ctx.clients.librdkafka, ctx.metrics)
            self.snapshots = SnapshotPublisher(output, topics.api_snapshots, secret, remembered)
        #: A checkpoint landed that no snapshot holds; a forget request makes the next one due at once.
        self._unshared = self._share_now = False
        self._shared_at = time.monotonic()
        self._sharing: asyncio.Future[None] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _restore(self, saved: Checkpoint | None, source: str) -> None:
        """Take the copy from a checkpoint (None: an empty copy, read from the beginning)."""
        #: What the checkpoint held, said once the worker starts ("": there was none).
        self._restored = ""
        self._source = source if saved is not None else "the beginning"
        if saved is None:
            self.serving = Serving(self.rec)
            return
        state = saved.model
        rec = self.rec
        self.serving = Serving.restored(rec, state, saved.offsets)
        rec.profiles.update(state["profiles"])
        self.latest = state["latest"]
        self._lists_at = state["lists_at"]
        self._restored = (
            f"from {source}: {len(rec.profiles):,} users, {len(self.latest):,} stored lists, reading on from "
            + ", ".join(f"{tp} {offset}" for tp, offset in sorted(saved.offsets.items()))
        )

    def install(self, app: faust.App) -> None:
        for feed in (self.index.feed, self.events, self.lists):
            app.service(feed)  # type: ignore[arg-type]  # faust's stubs take classes; instances work
        app.timer(1.0, name="api-index")(self.index.flush)  # no Qdrant view here: the metrics only
        app.timer(1.0, name="api-checkpoint")(self._on_timer)
        self.ctx.ready_checks[ROLE] = lambda: self.health().ready

    async def open(self) -> None:
        settings = self.ctx.settings
        if self._restored:  # logged here: logging is set up once the worker starts
            log.info("api copy restored %s", self._restored)
        app = create_api(self, self.ctx.metrics, settings.recommender.k, token=settings.api_secret())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.api_host, settings.api_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise InfrastructureError(
                f"the API cannot listen on {settings.api_host}:{settings.api_port} ({exc.strerror or exc}): "
                "pass another --api-port (0: any free port)"
            ) from None
        port = self._runner.addresses[0][1] if self._runner.addresses else settings.api_port
        self.url = f"http://{settings.api_host}:{port}"
        log.info("api: %s (docs: %s/docs)", self.url, self.url)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._on_timer(force=True)
        if self.acks is not None:
            await self.acks.drain()
        if self._sharing is not None:
            await self._sharing
        if self._unshared:  # a process that stops leaves its latest state for the next one
            self._share()
            if self._sharing is not None:
                await self._sharing
        if self.snapshots is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.snapshots.output.close)
        await self.fits.close()

    # -- checkpoints ----------------------------------------------------------------

    async def _on_timer(self, force: bool = False) -> None:
        interval = self.ctx.settings.recommender.checkpoint_interval_s
        if self.acks is None or not self._changed:
            return
        if force or time.monotonic() - self._last_checkpoint >= interval:
            await self._checkpoint(self.acks)

    async def _checkpoint(self, acks: CheckpointWriter) -> None:
        """The copy and the offsets it was read up to, as they are now: taken between two
        batches, in one step of the event loop (a forked child writes it)."""
        await acks.drain()  # the previous one is written: `snapshot` then forks without waiting
        self._last_checkpoint = time.monotonic()
        self._changed = False
        serving = self.serving
        state = {
            **serving.state(),
            "profiles": dict(self.rec.profiles),
            "latest": dict(self.latest),
            "lists_at": dict(self._lists_at),
        }
        await acks.snapshot(state, dict(serving.offsets), landed=self._landed)

    async def _landed(self) -> None:
        """A checkpoint is in place: it becomes a snapshot on the topic when one is due."""
        self._unshared = True
        if self._share_now or time.monotonic() - self._shared_at >= self.ctx.settings.api_snapshot_interval_s:
            self._share()

    def _share(self) -> None:
        """Publish the checkpoint in place as a snapshot, in a thread, one at a time (one still
        being published leaves this to the next checkpoint)."""
        if self.snapshots is None or self.store is None or (self._sharing and not self._sharing.done()):
            return
        self._unshared = self._share_now = False
        self._shared_at = time.monotonic()
        loop = asyncio.get_running_loop()
        published = loop.run_in_executor(None, self.snapshots.publish, self.store.path)
        self._sharing = asyncio.ensure_future(self._published(published))

    async def _published(self, published: Awaitable[Any]) -> None:
        try:
            await published
        except (OSError, InfrastructureError) as exc:
            log.error("snapshot not published, retrying after the next checkpoint: %s", exc)
            self._unshared = self._share_now = True

    # -- the copy of the state, from the topics --------------------------------------

    async def _on_events(self, records: Sequence[ConsumerRecord]) -> None:
        serving = self.serving
        parsed = [
            (record, parse_user_event(self.ctx, record.topic, record.value, record.key)) for record in records
        ]
        if any(isinstance(e, Click) and e.item_id not in self.rec.index for _, e in parsed):
            # As the recommender does: a just-published item's vector may be a moment behind.
            await self.index.feed.catch_up(timeout=0.5)
        takes = [(e.user_id, e.item_id) for _, e in parsed if isinstance(e, Click | EncodedReview)]
        with self.rec.learning_batch(takes):  # as the recommender applies a batch
            for record, typed in parsed:
                source = Trigger(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    ts=record.timestamp / 1000,
                )
                if typed is None:
                    serving.advance(source)
                elif isinstance(typed, str):
                    serving.advance(source)
                    serving.forget(typed, at=source.ts)
                    self.latest.pop(typed, None)
                    # The erasure must reach the checkpoint and the snapshot now, not at the
                    # next periodic ones.
                    self._last_checkpoint = 0.0
                    self._share_now = True
                elif isinstance(typed, Click):
                    serving.click(typed, source)
                elif isinstance(typed, Impression):
                    serving.impression(typed, source)
                elif isinstance(typed, EncodedReview):
                    serving.review(typed, source)
        self._changed = True

    async def _on_lists(self, records: Sequence[ConsumerRecord]) -> None:
        self._changed = True
        for record in records:
            self._lists_at[partition_key(record.topic, record.partition)] = record.offset + 1
            user = (record.key or b"").decode("utf-8", "replace")
            if record.value is None:
                self.latest.pop(user, None)
            else:
                self.latest[user] = record.value

    # -- answers (`streamrec.streams.roles.api.answers.Answers`) ----------------------------------

    def stored(self, user_id: str) -> bytes | None:
        return self.latest.get(user_id)

    def listable(self, item_ids: list[str]) -> bool:
        rec = self.rec
        rules = rec.ranker.rules
        return all(
            rec.available(i) and (rules.empty or rules.allows(i, rec.index.payload(i).get("tags") or []))
            for i in item_ids
        )

    def recommend(self, user_id: str, k: int, tags: list[str], exclude: list[str]) -> Recommendation:
        rec = self.rec
        scored = rec.recommend([user_id], k, exclude=exclude, tags=tags)[0]
        stranger = user_id not in rec.profiles and user_id not in rec.user_cf
        wording = rec.ranker.wording
        items = [
            RecommendedItem(
                item_id=s.item_id,
                score=s.score,
                # A user never seen is told why the list is not theirs yet.
                reasons=[wording.say("new_user"), *s.reasons][:2] if stranger else s.reasons,
            )
            for s in scored
        ]
        model = self.index.model_info()
        return Recommendation(
            user_id=user_id, items=items, generated_at=time.time(), trigger=None, model=model
        )

    def profile(self, user_id: str) -> ReadableProfile | None:
        rec = self.rec
        found = rec.profiles.get(user_id)
        if found is None:
            return None
        return portrait(
            found, lambda item: rec.index.payload(item).get("title"), self.labels, rec.ranker.wording
        )

    def similar(self, item_id: str, k: int) -> SimilarItems | None:
        rec = self.rec
        index, rules = rec.index, rec.ranker.rules
        if item_id not in index or not rec.available(item_id):
            return None
        # What the item is: its text, else another modality's vector, else what CF learned of it.
        space = next((n for n in ("text", *rec.modalities, "cf") if index.has(n, item_id)), None)
        if space is None:
            return SimilarItems(item_id=item_id, items=[])
        vector = index.get(space, [item_id])[item_id]
        # Over-fetch, then keep what the rules allow (hidden items are never found).
        hits = index.search(space, vector, k=k + 50, exclude={item_id})
        title = index.payload(item_id).get("title") or item_id
        reason = rec.ranker.wording.say("like_item", title=title)
        items = [
            RecommendedItem(item_id=i, score=round(score, 6), reasons=[reason])
            for i, score in hits
            if rules.allows(i, index.payload(i).get("tags") or [])
        ][:k]
        return SimilarItems(item_id=item_id, items=items)

    def health(self) -> Health:
        waiting = [
            f"{', '.join(feed.topics)}: {feed.behind:,} records to read"
            for feed in (self.index.feed, self.events, self.lists)
            if not feed.caught_up.is_set()
        ]
        if self._runner is None:
            waiting.append("the HTTP server is starting")
        if waiting:
            return Health(ready=False, why=f"reading the topics from {self._source}: " + "; ".join(waiting))
        return Health(
            ready=True, why=f"serving {len(self.latest):,} stored lists and {len(self.rec.index):,} items"
        )


def _seed(path: Path) -> Checkpoint:
    """Another API process's checkpoint (its file, or its state directory): checkpoints are put
    in place by a rename, so one being written beside it is never read half-written."""
    store = CheckpointStore(path if path.suffix == ".pkl" else path / "checkpoint.pkl")
    try:
        saved = store.load()
    except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(f"api_seed {str(path)!r} cannot be read: {exc}") from None
    if saved is None:
        raise ValueError(f"api_seed must name an API checkpoint, got {str(path)!r} with none")
    log.info("the API starts from the checkpoint at %s", store.path)
    return saved


def _from_topic(ctx: Context, secret: bytes) -> Checkpoint | None:
    """The latest snapshot an API process published to the topic, or None (there is none, or it
    cannot be read: the process then reads the topics from their beginning)."""
    topic = ctx.topics.api_snapshots
    found = read_snapshot(ctx.clients, topic, secret)
    if found is None:
        return None
    blob, manifest = found
    try:
        return CheckpointStore.loads(blob, f"snapshot {manifest.id} on {topic}")
    except (ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        log.warning("snapshot %s on %s cannot be read, reading from the start: %s", manifest.id, topic, exc)
        return None


def _claim(settings: Settings) -> CheckpointStore | None:
    """The API's checkpoint store; None where another API process holds the state directory
    (replicas sharing one): this one then keeps no checkpoint and reads from the beginning."""
    try:
        return CheckpointStore.claim(settings, ROLE, wait_s=CLAIM_WAIT_S)
    except StateInUseError as exc:
        log.warning("the API keeps no checkpoint: %s", exc)
        return None
