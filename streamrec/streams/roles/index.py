"""The recommender's item index, fed from every partition of the vector topics, and its Qdrant view.

A global feed reads `vectors` (item text and CF vectors, user CF vectors) and
`reviews-encoded` (review vectors describe their item) into the in-memory index that ranks;
Qdrant receives the same vectors, and the users' profile vectors, as a durable, queryable view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import numpy as np
from aiokafka import ConsumerRecord

from streamrec.model.schemas import Trigger
from streamrec.model.serving import Serving
from streamrec.streams.context import Context
from streamrec.streams.feed import GlobalFeed
from streamrec.streams.messages import parse_encoded_review, parse_vector, parse_vector_key
from streamrec.streams.sink import Point, QdrantSink
from streamrec.streams.telemetry import TimedSearch

__all__ = ["IndexFeed"]

log = logging.getLogger(__name__)


class IndexFeed:
    """Keeps the index of `serving`'s recommender and the Qdrant view up to date.

    Parameters
    ----------
    ctx
        The worker's context.
    serving
        Whose recommender's index the vectors go to.
    sink
        The Qdrant view (None: a feed that only keeps the index, as the API's copy does).
    role
        For metrics.
    """

    def __init__(
        self,
        ctx: Context,
        serving: Serving,
        sink: QdrantSink | None,
        role: str,
        on_withdrawn: Callable[[dict[str, Trigger]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        #: Told of the items each batch took off lists, with the message that did.
        self.on_withdrawn = on_withdrawn
        self.serving = serving
        self.rec = serving.rec
        self.sink = sink
        self.role = role
        #: The versions of the CF model and the encoder whose vectors were seen last.
        self.versions = {"cf": "", "encoder": ""}
        self.feed = GlobalFeed(
            [ctx.topics.vectors, ctx.topics.reviews_encoded],
            self._on_vectors,
            ctx.clients,
            ctx.metrics,
            role,
            # Short handler runs: every second brings a vector per changed item, and events
            # wait while a batch of them is applied.
            max_records=500,
        )
        self._opening: asyncio.Future[None] | None = None
        self._flushing = asyncio.Lock()

    # -- the index ------------------------------------------------------------------

    def _mark(self, kind: str, ids: Sequence[str]) -> None:
        if self.sink is not None:
            self.sink.mark(kind, ids)

    def _delete(self, kind: str, id: str) -> None:
        if self.sink is not None:
            self.sink.delete(kind, id)

    async def _on_vectors(self, records: Sequence[ConsumerRecord]) -> None:
        rec, topics = self.rec, self.ctx.topics
        cf_items: dict[str, np.ndarray] = {}
        cf_users: dict[str, np.ndarray] = {}
        withdrawn: dict[str, Trigger] = {}
        for record in records:
            if record.topic == topics.reviews_encoded:
                self._on_review_vector(record)
                continue
            if record.value is None:
                # A tombstone: a forgotten user's CF vector, or an item's vector of another modality.
                kind, name, id = parse_vector_key(record.key or b"")
                if kind == "user" and name == "cf":
                    rec.user_cf.pop(id, None)
                    cf_users.pop(id, None)
                elif kind == "item" and name in rec.modalities:
                    rec.on_item_vector(id, name, None)
                    self._mark("items", [id])
                continue
            msg = parse_vector(record.value)
            if msg["name"] == "text" and msg["kind"] == "item":
                id = msg["id"]
                # Replaying the topic at start restores state; only what happens after is a change.
                live = self.feed.caught_up.is_set()
                if not msg["available"]:
                    if rec.withdraw(id):
                        self._delete("items", id)
                        if live:
                            withdrawn[id] = Trigger(
                                topic=record.topic, partition=record.partition, offset=record.offset,
                                ts=record.timestamp / 1000,
                            )  # fmt: skip
                            self.ctx.metrics.catalog_changes.labels("withdrawn", self.role).inc()
                    continue
                if rec.restore(id):
                    if live:
                        self.ctx.metrics.catalog_changes.labels("restored", self.role).inc()
                    self._mark("items", [id])
                if msg["v"] is not None:
                    rec.on_item(id, msg.get("title") or id, msg["v"], msg["ts"], msg.get("tags") or [])
                    self._mark("items", [id])
                    self.versions["encoder"] = msg["version"]
                elif "tags" in msg:
                    rec.tag(id, msg["tags"] or [])
            elif msg["kind"] == "item" and msg["name"] in rec.modalities:
                rec.on_item_vector(msg["id"], msg["name"], msg["v"])
                self._mark("items", [msg["id"]])
            elif msg["name"] == "cf":
                (cf_items if msg["kind"] == "item" else cf_users)[msg["id"]] = msg["v"]
                self.versions["cf"] = msg["version"]
        if cf_items:
            rec.on_item_cf(list(cf_items), np.stack(list(cf_items.values())))
            self._mark("items", list(cf_items))
        if cf_users:
            rec.on_user_cf(list(cf_users), np.stack(list(cf_users.values())))
            self._mark("users", list(cf_users))
        if withdrawn and self.on_withdrawn is not None:
            self.on_withdrawn(withdrawn)
        if rec.cf_moved:
            # A refit of the content map moved the generated CF vectors of young items.
            self._mark("items", sorted(rec.cf_moved))
            rec.cf_moved.clear()

    def _on_review_vector(self, record: ConsumerRecord) -> None:
        """Fold a review into its item's text vector, or take it back on a tombstone."""
        key = record.key or b""
        if record.value is None:
            item = self.serving.unfold_review(key)
            if item is not None:
                self._mark("items", [item])
            return
        review = parse_encoded_review(record.value, key)
        if self.serving.fold_review(review, record.partition):
            self._mark("items", [review.item_id])
            self.versions["encoder"] = review.version

    # -- the Qdrant view ------------------------------------------------------------

    def open(self) -> None:
        """Start opening Qdrant in the background; the worker serves from memory meanwhile."""
        self._opening = asyncio.ensure_future(self._open_qdrant())

    async def _open_qdrant(self) -> None:
        assert self.sink is not None, "a feed without a Qdrant view"
        await self.sink.start()
        settings = self.ctx.settings
        retrieval = settings.recommender.retrieval
        backend = "memory"
        if retrieval == "qdrant" or (retrieval == "auto" and settings.qdrant_url):
            # Candidates from Qdrant's HNSW (a server, for catalogs beyond an exact scan);
            # the Qdrant view trails the in-memory index by at most one flush (2 s).
            backend = "qdrant"
            self.rec.ranker.searcher = TimedSearch(self.sink.collections["items"], self.ctx.metrics, backend)
        log.info("Qdrant open; candidate search: %s", backend)

    async def close(self) -> None:
        if self.sink is None:
            return
        if self.sink.ready:
            await self.flush()
        elif self._opening is not None:
            self._opening.cancel()
        await self.sink.close()

    def _points(self, kind: str, ids: list[str]) -> list[Point]:
        rec = self.rec
        encoder = {"encoder": self.versions["encoder"]}
        points: list[Point] = []
        if kind == "items":
            named = {name: rec.index.get(name, ids) for name in ("text", "cf", *rec.modalities)}
            for id in ids:
                vectors = {name: found.get(id) for name, found in named.items()}
                if any(v is not None for v in vectors.values()) and rec.available(id):
                    known = rec.index.payload(id)
                    payload = {"title": known.get("title"), "tags": known.get("tags") or [], **encoder}
                    points.append((id, vectors, payload))
            return points
        for id in ids:
            profile = rec.profiles.get(id)
            text = profile.text_vector() if profile is not None else None
            cf = rec.user_cf.get(id)
            if text is not None or cf is not None:
                points.append((id, {"text": text, "cf": cf}, encoder))
        return points

    async def flush(self) -> None:
        """Write what changed to Qdrant (when it is open: until then the changes wait)."""
        if self.sink is None or not self.sink.ready:
            return
        async with self._flushing:
            if self.sink.backlog:
                await self.sink.flush(self._points)
        metrics = self.ctx.metrics
        metrics.model_entities.labels(self.role, "items").set(len(self.rec.index))
        metrics.model_entities.labels(self.role, "users_cf").set(len(self.rec.user_cf))
        await asyncio.sleep(0)
