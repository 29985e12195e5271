"""The recommender's item index, fed from every partition of the vector topics, and its Qdrant view.

A global feed reads `vectors` (item text and CF vectors, user CF vectors) and
`reviews-encoded` (review vectors describe their item) into the in-memory index that ranks;
Qdrant receives the same vectors, and the users' profile vectors, as a durable, queryable view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import numpy as np
import orjson
from aiokafka import ConsumerRecord

from streamrec.model.events.schemas import ModelInfo, Trigger
from streamrec.model.serving.service import Serving
from streamrec.streams.context import Context
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.messages import is_version_marker, parse_encoded_review, parse_vector, parse_vector_key
from streamrec.streams.telemetry import TimedSearch
from streamrec.streams.vectors.sink import Point, QdrantSink

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
        #: The version of the CF model whose vectors were seen last.
        self.cf_version = ""
        #: Per encoder version, the partitions ("topic", partition) its marker was read from.
        self._markers: dict[str, set[tuple[str, int]]] = {}
        self._partition_ids: dict[str, list[int]] = {}
        #: The Qdrant collections are being filled: candidates from memory until they are.
        self._filling = False
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
            if is_version_marker(record.value):
                self._on_marker(record)
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
                    title, tags = msg.get("title") or id, msg.get("tags") or []
                    rec.on_item(id, title, msg["v"], msg["ts"], tags, version=msg["version"])
                    self._mark("items", [id])
                elif "tags" in msg:
                    rec.tag(id, msg["tags"] or [])
            elif msg["kind"] == "item" and msg["name"] in rec.modalities:
                rec.on_item_vector(msg["id"], msg["name"], msg["v"])
                self._mark("items", [msg["id"]])
            elif msg["name"] == "cf":
                (cf_items if msg["kind"] == "item" else cf_users)[msg["id"]] = msg["v"]
                self.cf_version = msg["version"]
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
        if rec.text_moved:
            # The text space moved (its mean, or a learned projection): every item's text vector did.
            self._mark("items", sorted(rec.text_moved))
            rec.text_moved.clear()

    def _on_review_vector(self, record: ConsumerRecord) -> None:
        """Fold a review into its item's text vector, or take it back on a tombstone."""
        key = record.key or b""
        if is_version_marker(record.value):
            self._on_marker(record)
            return
        if record.value is None:
            item = self.serving.unfold_review(key)
            if item is not None:
                self._mark("items", [item])
            return
        review = parse_encoded_review(record.value, key)
        if self.serving.fold_review(review, record.partition):
            self._mark("items", [review.item_id])

    # -- encoder versions -------------------------------------------------------------

    def model_info(self) -> ModelInfo:
        """The versions a list is computed with now."""
        return ModelInfo(cf=self.cf_version or "none", encoder=self.rec.versions.active or "none")

    def _on_marker(self, record: ConsumerRecord) -> None:
        """The encoder has read everything again under a version: once its marker has been read on
        every partition of both vector topics, every vector of that version is here, and it serves."""
        marker = orjson.loads(record.value)
        version = marker["version"]
        seen = self._markers.setdefault(version, set())
        seen.add((record.topic, record.partition))
        topics = (self.ctx.topics.vectors, self.ctx.topics.reviews_encoded)
        wanted = {(t, p) for t in topics for p in self._partitions(t)}
        if not wanted <= seen:
            return
        del self._markers[version]
        versions = self.rec.versions
        if version not in (versions.active, *versions.retired) and (
            versions.staged is None or versions.staged.version != version
        ):
            # Nothing of it arrived before its marker (the encoder read nothing again): an empty space.
            self.rec.text_route(version, np.zeros(int(marker["dim"]), dtype=np.float32))
        if versions.settle(version):
            self._switch(version)

    def _partitions(self, topic: str) -> list[int]:
        if topic not in self._partition_ids:
            self._partition_ids[topic] = self.ctx.clients.partitions(topic)
        return self._partition_ids[topic]

    def _switch(self, version: str) -> None:
        rec = self.rec
        old = rec.versions.active
        # The Qdrant collections hold the old version until the next flush: search memory meanwhile.
        rec.ranker.searcher = TimedSearch(rec.index, self.ctx.metrics, "memory")
        lost = self.serving.switch_text(version)
        log.info(
            "text vectors switched from encoder %s to %s (%d dims, %d items); %d item(s) had no text "
            "the new encoder read",
            old, version, rec.text_dim, len(rec.item_texts.items()), len(lost),
        )  # fmt: skip
        # Every point moves to the new version's collections; the old ones are dropped.
        self._mark("items", rec.index.ids())
        self._mark("users", sorted(set(rec.user_cf) | set(rec.profiles)))
        rec.cf_moved.clear()
        rec.text_moved.clear()
        self._report_versions(old)

    def _report_versions(self, old: str = "") -> None:
        metrics, versions = self.ctx.metrics, self.rec.versions
        if old:
            with contextlib.suppress(KeyError):  # not set, if it switched before a first flush
                metrics.text_version.remove(self.role, old)
        if versions.active:
            metrics.text_version.labels(self.role, versions.active).set(1)
        staged = versions.staged
        catalog = len(self.rec.item_texts.items())
        done = 1.0 if staged is None else min(1.0, len(staged.catalog) / max(1, catalog))
        metrics.reencode_progress.labels(self.role).set(done)

    # -- the Qdrant view ------------------------------------------------------------

    def open(self) -> None:
        """Start opening Qdrant in the background; the worker serves from memory meanwhile."""
        self._opening = asyncio.ensure_future(self._open_qdrant())

    async def _open_qdrant(self) -> None:
        assert self.sink is not None, "a feed without a Qdrant view"
        await self.sink.start()
        log.info("Qdrant open; candidate search: %s", "qdrant" if self._qdrant_retrieval() else "memory")

    def _qdrant_retrieval(self) -> bool:
        settings = self.ctx.settings
        retrieval = settings.recommender.retrieval
        return retrieval == "qdrant" or (retrieval == "auto" and bool(settings.qdrant_url))

    def _search_qdrant(self) -> None:
        """Candidates from Qdrant's HNSW (a server, for catalogs beyond an exact scan), when the
        settings ask for it; the Qdrant view trails the in-memory index by at most one flush (2 s)."""
        if self.sink is not None and self.sink.ready and self._qdrant_retrieval():
            searcher = TimedSearch(self.sink.collections["items"], self.ctx.metrics, "qdrant")
            self.rec.ranker.searcher = searcher

    async def close(self) -> None:
        if self.sink is None:
            return
        if self.sink.opened:
            await self.flush()
        elif self._opening is not None:
            self._opening.cancel()
        await self.sink.close()

    def _points(self, kind: str, ids: list[str]) -> list[Point]:
        rec = self.rec
        if self.sink is not None and self.sink.text_version != rec.versions.active:
            return []  # switched during this flush: everything is marked for the new collections
        encoder = {"encoder": rec.versions.active}
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
            text = rec.user_text(id)
            cf = rec.user_cf.get(id)
            if text is not None or cf is not None:
                points.append((id, {"text": text, "cf": cf}, encoder))
        return points

    async def flush(self) -> None:
        """Write what changed to Qdrant (when it is open: until then the changes wait)."""
        self._report_versions()
        sink = self.sink
        if sink is None or not sink.opened:
            return
        async with self._flushing:
            active = self.rec.versions.active
            if active and sink.text_version != active and self.feed.caught_up.is_set():
                # The collections of the version that serves (new ones after a switch; the old go);
                # candidates come from memory until they are filled.
                self.rec.ranker.searcher = TimedSearch(self.rec.index, self.ctx.metrics, "memory")
                if await sink.use_text(active, self.rec.text_dim):
                    self._mark("items", self.rec.index.ids())
                    self._mark("users", sorted(set(self.rec.user_cf) | set(self.rec.profiles)))
                self._filling = True
            if sink.ready and sink.backlog:
                await sink.flush(self._points)
            if self._filling and sink.ready and not sink.backlog:
                self._filling = False
                self._search_qdrant()
        metrics = self.ctx.metrics
        metrics.model_entities.labels(self.role, "items").set(len(self.rec.index))
        metrics.model_entities.labels(self.role, "users_cf").set(len(self.rec.user_cf))
        await asyncio.sleep(0)
