"""An exact in-memory vector index with named vectors, searched with BLAS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from streamrec.model.base import FloatArray, Hit

__all__ = ["MemoryIndex"]

Metric = Literal["cosine", "dot"]


class _Space:
    """One named vector space: a growable matrix and which rows hold a vector."""

    def __init__(self, dim: int, metric: Metric) -> None:
        self.dim = dim
        self.metric = metric
        self.matrix = np.zeros((256, dim), dtype=np.float32)
        self.present = np.zeros(256, dtype=bool)

    def grow(self, rows: int) -> None:
        if rows <= len(self.present):
            return
        size = max(rows, 2 * len(self.present))
        matrix = np.zeros((size, self.dim), dtype=np.float32)
        matrix[: len(self.matrix)] = self.matrix
        present = np.zeros(size, dtype=bool)
        present[: len(self.present)] = self.present
        self.matrix, self.present = matrix, present


class MemoryIndex:
    """Named vectors per entity, searched exactly (brute force, batched with BLAS).

    Cosine spaces store unit vectors, so both metrics search by inner product. Rows of
    deleted entities are reused. This is the same exact search that Qdrant's local mode
    does, vectorized, for catalogs that fit in memory.

    Parameters
    ----------
    spaces
        Vector name to `(dimension, metric)`.

    Examples
    --------
    >>> index = MemoryIndex({"text": (2, "cosine")})
    >>> index.upsert("text", ["a", "b", "c"], np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    >>> [id for id, _ in index.search("text", np.array([1, 0.1], dtype=np.float32), k=2)]
    ['a', 'c']
    >>> [id for id, _ in index.search("text", np.array([1, 0.1], dtype=np.float32), k=2, exclude={"a"})]
    ['c', 'b']
    >>> index.hide(["c"])
    >>> query = np.array([1, 0.1], dtype=np.float32)
    >>> [id for id, _ in index.search("text", query, k=2)], index.has("text", "c")
    (['a', 'b'], True)
    """

    def __init__(self, spaces: Mapping[str, tuple[int, Metric]]) -> None:
        self.spaces = {name: _Space(dim, metric) for name, (dim, metric) in spaces.items()}
        self._ids: list[str | None] = []
        self._pos: dict[str, int] = {}
        self._free: list[int] = []
        self._payloads: dict[str, dict[str, Any]] = {}
        #: Entities kept (vectors, payload) but never found by a search: items off sale.
        self.hidden: set[str] = set()

    def layout(self) -> dict[str, tuple[int, Metric]]:
        """Each space's dimension and metric, as the constructor takes them (a mirror's layout).

        >>> MemoryIndex({"text": (2, "cosine"), "cf": (3, "dot")}).layout()
        {'text': (2, 'cosine'), 'cf': (3, 'dot')}
        """
        return {name: (space.dim, space.metric) for name, space in self.spaces.items()}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, id: object) -> bool:
        return id in self._pos

    def ids(self) -> list[str]:
        return list(self._pos)

    def _row(self, id: str) -> int:
        row = self._pos.get(id)
        if row is None:
            if self._free:
                row = self._free.pop()
                self._ids[row] = id
            else:
                row = len(self._ids)
                self._ids.append(id)
                for space in self.spaces.values():
                    space.grow(row + 1)
            self._pos[id] = row
        return row

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: FloatArray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        space = self.spaces[name]
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), space.dim)
        if space.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        rows = [self._row(id) for id in ids]
        space.matrix[rows] = vectors
        space.present[rows] = True
        if payloads is not None:
            for id, payload in zip(ids, payloads, strict=True):
                self._payloads.setdefault(id, {}).update(payload)

    def set_payload(self, id: str, payload: Mapping[str, Any]) -> None:
        self._row(id)
        self._payloads.setdefault(id, {}).update(payload)

    def payload(self, id: str) -> dict[str, Any]:
        return self._payloads.get(id, {})

    def has(self, name: str, id: str) -> bool:
        row = self._pos.get(id)
        return row is not None and bool(self.spaces[name].present[row])

    def get(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        space = self.spaces[name]
        out = {}
        for id in ids:
            row = self._pos.get(id)
            if row is not None and space.present[row]:
                out[id] = space.matrix[row]
        return out

    def rows(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each entity's row (-1: unknown), for `stack_rows`."""
        return np.fromiter(map(self._pos.get, ids, repeat(-1)), dtype=np.int64, count=len(ids))

    def stack(self, name: str, ids: Sequence[str]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Vectors of `ids` as one matrix (zeros where absent) and a presence mask."""
        return self.stack_rows(name, self.rows(ids))

    def stack_rows(self, name: str, rows: npt.NDArray[np.int64]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """`stack` of the entities at `rows` (`rows`: -1 for an unknown one)."""
        space = self.spaces[name]
        known = rows >= 0
        safe = np.where(known, rows, 0)
        out: FloatArray = space.matrix[safe]
        known &= space.present[safe]
        out[~known] = 0.0
        return out, known

    def drop(self, name: str, ids: Iterable[str]) -> None:
        """Remove entities' vectors of one space (the entities and their other vectors stay)."""
        space = self.spaces[name]
        for id in ids:
            row = self._pos.get(id)
            if row is not None:
                space.present[row] = False
                space.matrix[row] = 0.0

    def replace_space(self, name: str, dim: int) -> None:
        """Start space `name` over, empty, with vectors of `dim` numbers (its metric stays): the
        space of a new encoder, whose vectors are never compared with the old one's.

        >>> index = MemoryIndex({"text": (2, "cosine")})
        >>> index.upsert("text", ["a"], np.array([[1, 0]], dtype=np.float32))
        >>> index.replace_space("text", 3)
        >>> index.has("text", "a"), index.spaces["text"].dim, "a" in index
        (False, 3, True)
        """
        space = _Space(dim, self.spaces[name].metric)
        space.grow(len(self._ids))
        self.spaces[name] = space

    def hide(self, ids: Iterable[str]) -> None:
        """Keep entities out of every search until `show`; their vectors stay, ready to return."""
        self.hidden.update(ids)

    def show(self, ids: Iterable[str]) -> None:
        self.hidden.difference_update(ids)

    def delete(self, ids: Sequence[str]) -> None:
        for id in ids:
            row = self._pos.pop(id, None)
            if row is None:
                continue
            for space in self.spaces.values():
                space.present[row] = False
                space.matrix[row] = 0.0
            self._ids[row] = None
            self._free.append(row)
            self._payloads.pop(id, None)

    def search(self, name: str, query: FloatArray, k: int, exclude: Iterable[str] = ()) -> list[Hit]:
        return self.search_many(name, np.asarray(query, dtype=np.float32)[None, :], k, [exclude])[0]

    def search_many(
        self,
        name: str,
        queries: FloatArray,
        k: int,
        exclude: Sequence[Iterable[str]] | None = None,
    ) -> list[list[Hit]]:
        """Top `k` per query row; one matrix product for the whole batch."""
        space = self.spaces[name]
        n = len(self._ids)
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, space.dim)
        if n == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        if space.metric == "cosine":
            norms = np.linalg.norm(queries, axis=1, keepdims=True)
            queries = (queries / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        scores = queries @ space.matrix[:n].T
        scores[:, ~space.present[:n]] = -np.inf
        if self.hidden:
            scores[:, [self._pos[i] for i in self.hidden if i in self._pos]] = -np.inf
        if exclude:
            # Each query's excluded rows, looked up once per distinct set (a user's queries share one).
            rows_of: dict[int, list[int]] = {}
            owners: list[int] = []
            skipped: list[int] = []
            for q, skip in enumerate(exclude):
                rows = rows_of.get(id(skip))
                if rows is None:
                    rows = rows_of[id(skip)] = [r for r in map(self._pos.get, skip) if r is not None]
                owners.extend([q] * len(rows))
                skipped.extend(rows)
            scores[owners, skipped] = -np.inf
        want = min(k, n)
        if want < n:
            top = np.argpartition(-scores, want - 1, axis=1)[:, :want]
        else:
            top = np.broadcast_to(np.arange(n), (len(scores), n))
        best = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-best, axis=1, kind="stable")
        top, best = np.take_along_axis(top, order, axis=1), np.take_along_axis(best, order, axis=1)
        ids = cast("list[str]", self._ids)  # a row that holds a vector has an id
        # Best first: what was excluded or absent (-inf) comes last.
        found = (best > -np.inf).sum(axis=1).tolist()
        results = []
        for rows, values, n in zip(top.tolist(), best.tolist(), found, strict=True):
            results.append(list(zip(map(ids.__getitem__, rows[:n]), values[:n], strict=True)))
        return results
