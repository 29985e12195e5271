"""The API role: answers HTTP requests for any user, from a copy of the recommender's state.

The recommender role holds each user on the process that owns their partition; an API process
must answer for every user. So the role keeps its own copy, read from every partition of the
topics the recommenders read (global feeds, outside any consumer group): the item index from
`vectors` and `reviews-encoded`, profiles and counts from `clicks`, `reviews-encoded` and `forget`
(applied by the same `Serving` code as the recommender's), and the latest published list per user
from the compacted `recommendations`. It writes nothing, so it scales by adding processes; a
process reads the topics from the beginning when it starts, and says so in `/healthz` until it
has caught up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import faust
from aiohttp import web
from aiokafka import ConsumerRecord

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
from streamrec.streams.errors import InfrastructureError
from streamrec.streams.forked import InChild
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.roles.api.answers import Health, SimilarItems
from streamrec.streams.roles.api.http import create_api
from streamrec.streams.roles.index.role import IndexFeed
from streamrec.streams.roles.recommender.role import aspect_labels, make_recommender, parse_user_event

__all__ = ["ApiRole"]

log = logging.getLogger(__name__)
ROLE = "api"


class ApiRole:
    """Keeps a copy of the recommender's state from the topics, and serves it over HTTP."""

    def __init__(self, ctx: Context, text_dim: int) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.rec = make_recommender(settings, text_dim)
        # As the recommender's: the item model's refits in a child process, requests not waiting.
        self.fits = InChild("item model fit")
        self.rec.fit_elsewhere = self.fits
        self.serving = Serving(self.rec)
        self.labels = aspect_labels(settings)
        topics = ctx.topics
        self.index = IndexFeed(ctx, self.serving, None, ROLE)
        self.events = GlobalFeed(
            [topics.clicks, topics.reviews_encoded, topics.forget],
            self._on_events,
            ctx.clients,
            ctx.metrics,
            ROLE,
        )
        self.lists = GlobalFeed([topics.recommendations], self._on_lists, ctx.clients, ctx.metrics, ROLE)
        #: The latest list published per user, as published.
        self.latest: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    def install(self, app: faust.App) -> None:
        for feed in (self.index.feed, self.events, self.lists):
            app.service(feed)  # type: ignore[arg-type]  # faust's stubs take classes; instances work
        app.timer(1.0, name="api-index")(self.index.flush)  # no Qdrant view here: the metrics only
        self.ctx.ready_checks[ROLE] = lambda: self.health().ready

    async def open(self) -> None:
        settings = self.ctx.settings
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
        await self.fits.close()

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
                elif isinstance(typed, Click):
                    serving.click(typed, source)
                elif isinstance(typed, Impression):
                    serving.impression(typed, source)
                elif isinstance(typed, EncodedReview):
                    serving.review(typed, source)

    async def _on_lists(self, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
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
            return Health(ready=False, why="reading the topics from the beginning: " + "; ".join(waiting))
        return Health(
            ready=True, why=f"serving {len(self.latest):,} stored lists and {len(self.rec.index):,} items"
        )
