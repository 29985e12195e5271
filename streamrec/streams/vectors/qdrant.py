"""Qdrant collections with named vectors, behind the same interface as `MemoryIndex`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from qdrant_client import QdrantClient, models

from streamrec.model.base import FloatArray, Hit

__all__ = ["QdrantIndex", "point_id"]

_NAMESPACE = uuid.UUID("6f1c0d1e-5a53-4c55-9a0e-2f7f3b1f6a10")
_DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}


def point_id(collection: str, entity_id: str) -> str:
    """Qdrant point ids must be UUIDs or integers: a stable UUID per entity.

    >>> point_id("items", "B00A") == point_id("items", "B00A") != point_id("users", "B00A")
    True
    """
    return str(uuid.uuid5(_NAMESPACE, f"{collection}\x00{entity_id}"))


class QdrantIndex:
    """One Qdrant collection whose points carry named vectors and a payload.

    Upserts always write whole points (every named vector the caller has, plus the
    payload) keyed by a UUID derived from the entity id, so replays are idempotent.

    Parameters
    ----------
    client
        A `QdrantClient` (local mode or a server).
    collection
        Collection name.
    spaces
        Vector name to `(dimension, metric)`.

    Examples
    --------
    >>> index = QdrantIndex(QdrantClient(":memory:"), "items", {"text": (2, "cosine")})
    >>> index.ensure()
    >>> index.upsert_points(["a", "b"], {"text": np.array([[1, 0], [0, 1]], dtype=np.float32)},
    ...                     [{"title": "A"}, {"title": "B"}])
    >>> [id for id, _ in index.search("text", np.array([1, 0.2], dtype=np.float32), k=1)]
    ['a']
    """

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        spaces: Mapping[str, tuple[int, Literal["cosine", "dot"]]],
    ) -> None:
        self.client = client
        self.collection = collection
        self.spaces = dict(spaces)

    def ensure(self) -> bool:
        """Create the collection, or check that an existing one has the same vectors; True if
        it was created."""
        if self.client.collection_exists(self.collection):
            info = self.client.get_collection(self.collection)
            have = info.config.params.vectors
            if isinstance(have, Mapping):
                for name, (dim, _) in self.spaces.items():
                    params = have.get(name)
                    if params is None or params.size != dim:
                        seen = None if params is None else params.size
                        raise ValueError(
                            f"Qdrant collection {self.collection!r} must have vector {name!r} of size "
                            f"{dim}, got {seen}; use another topic prefix or delete the collection"
                        )
            return False
        self.client.create_collection(
            self.collection,
            vectors_config={
                name: models.VectorParams(size=dim, distance=_DISTANCES[metric])
                for name, (dim, metric) in self.spaces.items()
            },
        )
        return True

    def upsert_points(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, FloatArray | Sequence[FloatArray | None]],
        payloads: Sequence[Mapping[str, Any]] | None = None,
        wait: bool = True,
    ) -> None:
        """Write whole points; a `None` vector leaves that name out of the point."""
        points = []
        for j, id in enumerate(ids):
            named = {
                name: np.asarray(rows[j], dtype=np.float32).tolist()
                for name, rows in vectors.items()
                if rows[j] is not None
            }
            payload = {"id": id, **(payloads[j] if payloads is not None else {})}
            points.append(models.PointStruct(id=point_id(self.collection, id), vector=named, payload=payload))
        if points:
            self.client.upsert(self.collection, points=points, wait=wait)

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: FloatArray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.upsert_points(ids, {name: vectors}, payloads)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=[point_id(self.collection, i) for i in ids]),
                wait=True,
            )

    def get(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        if not ids:
            return {}
        records = self.client.retrieve(
            self.collection,
            [point_id(self.collection, i) for i in ids],
            with_payload=True,
            with_vectors=[name],
        )
        out = {}
        for record in records:
            vector = record.vector.get(name) if isinstance(record.vector, dict) else None
            if vector is not None and record.payload is not None:
                out[str(record.payload["id"])] = np.asarray(vector, dtype=np.float32)
        return out

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        records = self.client.retrieve(
            self.collection, [point_id(self.collection, i) for i in ids], with_payload=True
        )
        return {str(r.payload["id"]): dict(r.payload) for r in records if r.payload is not None}

    def search(self, name: str, query: FloatArray, k: int, exclude: Iterable[str] = ()) -> list[Hit]:
        return self.search_many(name, np.asarray(query, dtype=np.float32)[None, :], k, [exclude])[0]

    def search_many(
        self,
        name: str,
        queries: FloatArray,
        k: int,
        exclude: Sequence[Iterable[str]] | None = None,
    ) -> list[list[Hit]]:
        """Top `k` per query; excluded ids are filtered after over-fetching, which is far
        cheaper than a `has_id` filter on large exclusion sets."""
        excludes = [set(e) for e in exclude] if exclude is not None else [set() for _ in queries]
        requests = [
            models.QueryRequest(
                query=np.asarray(q, dtype=np.float32).tolist(),
                using=name,
                limit=k + len(skip),
                with_payload=["id"],
            )
            for q, skip in zip(queries, excludes, strict=True)
        ]
        if not requests:
            return []
        responses = self.client.query_batch_points(self.collection, requests)
        results = []
        for response, skip in zip(responses, excludes, strict=True):
            hits = []
            for point in response.points:
                id = str(point.payload["id"]) if point.payload else ""
                if id and id not in skip:
                    hits.append((id, float(point.score)))
                    if len(hits) == k:
                        break
            results.append(hits)
        return results

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)
