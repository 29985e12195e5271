"""Qdrant as the durable, queryable view of item and user vectors.

Every vector it holds is derived from Kafka (the `vectors` topic, the profiles
changelog), so Qdrant can always be rebuilt from the topics. Writes are
batched per flush, run on one thread (the local-mode client is not thread-safe),
and retried with backoff: an unavailable Qdrant delays the view, it loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from qdrant_client import QdrantClient

from streamrec.streams.errors import QdrantError
from streamrec.streams.settings import Settings
from streamrec.streams.telemetry import Metrics
from streamrec.streams.vectors.qdrant import QdrantIndex

__all__ = ["QdrantSink", "collection_name", "open_qdrant"]

log = logging.getLogger(__name__)

Point = tuple[str, Mapping[str, np.ndarray | None], Mapping[str, Any]]


def open_qdrant(settings: Settings) -> QdrantClient:
    """A client for the configured Qdrant: a server by URL, else local mode."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=10)
    if settings.qdrant_in_memory:
        return QdrantClient(":memory:")
    path = settings.data_dir / "qdrant"
    path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as exc:
        raise QdrantError(
            f"Qdrant local storage {path} is locked by another process ({exc}); local mode serves one "
            "process: give each worker its own --data-dir, or use a Qdrant server with --qdrant-url"
        ) from None


def collection_name(settings: Settings, kind: str, version: str) -> str:
    """The collection of `kind` ("items", "users") that holds text vectors of encoder `version`:
    two encoders' vectors never share a collection.

    >>> collection_name(Settings(topic_prefix="shop-"), "items", "all-MiniLM-L6-v2:mean:256w:1a2b")
    'shop-items-td19d529391'
    """
    tag = hashlib.sha256(version.encode()).hexdigest()[:10]
    return f"{settings.topic(kind)}-t{tag}"


class QdrantSink:
    """Collects dirty entities and writes their whole points in batches."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        spaces: Mapping[str, tuple[int, Any]],
        client: QdrantClient | None = None,
        # Small batches: local mode holds the interpreter while it persists a batch, and
        # the event loop runs between batches.
        batch_size: int = 64,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.batch_size = batch_size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="qdrant")
        self._client = client
        self._spaces = dict(spaces)
        self.collections: dict[str, QdrantIndex] = {}
        #: The encoder version whose text vectors the collections hold.
        self.text_version = ""
        self._dirty: dict[str, set[str]] = {"items": set(), "users": set()}
        self._deleted: dict[str, set[str]] = {"items": set(), "users": set()}

    def _open(self) -> None:
        if self._client is None:
            self._client = open_qdrant(self.settings)

    async def start(self) -> None:
        """Open Qdrant, retrying with backoff until it answers; the worker runs meanwhile.

        Until then flushes keep their dirty sets: nothing is lost, the view is only late.
        """
        await self._retry("qdrant_open", self._open)

    @property
    def opened(self) -> bool:
        """Whether Qdrant answered (the collections open once the encoder version is known)."""
        return self._client is not None

    @property
    def ready(self) -> bool:
        return bool(self.collections)

    async def use_text(self, version: str, dim: int) -> bool:
        """Write to the collections of encoder `version` (text vectors of `dim` numbers) from now on,
        and drop those of other versions; True if they had to be created (then they are empty)."""
        self._spaces["text"] = (dim, "cosine")
        created: bool
        created, collections = await self._retry("qdrant_open", self._collections, version)
        self.collections, self.text_version = collections, version
        return created

    def _collections(self, version: str) -> tuple[bool, dict[str, QdrantIndex]]:
        client = self._client
        assert client is not None
        collections, created = {}, False
        for kind in ("items", "users"):
            name = collection_name(self.settings, kind, version)
            index = QdrantIndex(client, name, self._spaces)
            try:
                created = index.ensure() or created
            except ValueError as exc:
                # Other vectors than the deployment's now (a modality added): a view derived from
                # the topics, so it is made again, whole.
                log.warning("%s; making it again", exc)
                client.delete_collection(name)
                created = index.ensure() or created
            collections[kind] = index
            # Another version's vectors, or those of a version before versions were named.
            base = self.settings.topic(kind)
            for other in client.get_collections().collections:
                if other.name != name and (other.name == base or other.name.startswith(f"{base}-t")):
                    client.delete_collection(other.name)
                    log.info("dropped Qdrant collection %s (another encoder's vectors)", other.name)
        return created, collections

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def mark(self, kind: str, ids: Sequence[str] | set[str]) -> None:
        self._dirty[kind].update(ids)

    def delete(self, kind: str, id: str) -> None:
        self._dirty[kind].discard(id)
        self._deleted[kind].add(id)

    def pending(self) -> dict[str, dict[str, set[str]]]:
        """What Qdrant still lacks (for checkpoints: a restart must not forget a pending delete)."""
        return {
            "dirty": {k: set(v) for k, v in self._dirty.items()},
            "deleted": {k: set(v) for k, v in self._deleted.items()},
        }

    def restore(self, pending: dict[str, dict[str, set[str]]]) -> None:
        for kind, ids in pending.get("dirty", {}).items():
            self._dirty[kind].update(ids)
        for kind, ids in pending.get("deleted", {}).items():
            self._deleted[kind].update(ids)

    @property
    def backlog(self) -> int:
        return sum(len(v) for v in self._dirty.values()) + sum(len(v) for v in self._deleted.values())

    async def flush(self, points_of: Callable[[str, list[str]], list[Point]]) -> None:
        """Write every dirty entity; `points_of(kind, ids)` snapshots their vectors now."""
        if not self.collections:
            return
        for kind, index in self.collections.items():
            deleted, self._deleted[kind] = self._deleted[kind], set()
            if deleted:
                await self._retry(f"qdrant_delete_{kind}", index.delete, sorted(deleted))
            dirty, self._dirty[kind] = sorted(self._dirty[kind]), set()
            for start in range(0, len(dirty), self.batch_size):
                points = points_of(kind, dirty[start : start + self.batch_size])
                if not points:
                    continue
                ids = [p[0] for p in points]
                vectors = {name: [p[1].get(name) for p in points] for name in self._spaces}
                payloads = [p[2] for p in points]
                started = time.perf_counter()
                await self._retry(f"qdrant_upsert_{kind}", index.upsert_points, ids, vectors, payloads)
                self.metrics.qdrant_upsert_seconds.labels(kind).observe(time.perf_counter() - started)
                self.metrics.qdrant_points.labels(kind).inc(len(points))
                # Local mode pickles points while holding the interpreter: between batches the
                # event loop gets a turn, so a large flush delays events by a batch, not by all.
                await asyncio.sleep(0.005)

    async def _retry(self, operation: str, fn: Callable[..., Any], *args: Any) -> Any:
        delay = 0.5
        while True:
            try:
                return await self._run(fn, *args)
            except Exception as exc:  # noqa: BLE001 - any client or transport failure is retried
                self.metrics.retries.labels(operation).inc()
                log.warning("%s failed, retrying in %.1fs: %s", operation, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._run(client.close)
        self._pool.shutdown(wait=True)
