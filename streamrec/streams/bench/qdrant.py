"""Qdrant: batched upserts and candidate searches through `QdrantIndex`, as the recommender uses them.

Points carry the recommender's layout (a 384-dim cosine `text` vector, a 17-dim dot `cf`
vector and a title payload), with seeded random vectors: encoding 100,000 real texts would
take this benchmark's whole budget on a CPU, and exact search costs the same on any values.
Local mode (`QdrantClient(":memory:")`) searches by brute force in Python, so its query
counts are capped by time; a server (`url`) searches its HNSW index.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient

from streamrec.streams.vectors.qdrant import QdrantIndex

__all__ = ["bench_qdrant", "bench_qdrant_size"]

Say = Callable[[str], None]
TEXT_DIM, CF_DIM = 384, 17
UPSERT_BATCH = 256  # the recommender's Qdrant sink writes batches of this size
SEARCH_K = 10
CANDIDATES_K, CANDIDATE_BATCH = 100, 32  # a recommender batch: 100 candidates for each of many users


def _vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim), dtype=np.float32)


def _timed_loop(run: Callable[[int], int], budget_s: float, most: int) -> tuple[int, float]:
    """Call `run(i)` (returning queries done) until `most` queries or `budget_s` seconds."""
    done, started = 0, time.perf_counter()
    i = 0
    while done < most:
        done += run(i)
        i += 1
        if time.perf_counter() - started > budget_s:
            break
    return done, time.perf_counter() - started


def bench_qdrant_size(
    client: QdrantClient, backend: str, points: int, queries: int, budget_s: float, seed: int = 0
) -> dict[str, Any]:
    """Upsert `points` points in batches, then search; the collection is dropped afterwards."""
    rng = np.random.default_rng(seed)
    name = f"streamrec-bench-{uuid.uuid4().hex[:8]}"
    index = QdrantIndex(client, name, {"text": (TEXT_DIM, "cosine"), "cf": (CF_DIM, "dot")})
    index.ensure()
    try:
        started = time.perf_counter()
        for lo in range(0, points, UPSERT_BATCH):
            hi = min(points, lo + UPSERT_BATCH)
            ids = [f"item{i}" for i in range(lo, hi)]
            index.upsert_points(
                ids,
                {"text": _vectors(rng, hi - lo, TEXT_DIM), "cf": _vectors(rng, hi - lo, CF_DIM)},
                [{"title": f"item {i}"} for i in range(lo, hi)],
            )
        upsert_s = time.perf_counter() - started
        count = index.count()
        text_queries = _vectors(rng, max(queries, CANDIDATE_BATCH), TEXT_DIM)

        def one(i: int) -> int:
            index.search("text", text_queries[i % len(text_queries)], k=SEARCH_K)
            return 1

        def batch(i: int) -> int:
            lo = (i * CANDIDATE_BATCH) % len(text_queries)
            block = text_queries[lo : lo + CANDIDATE_BATCH]
            index.search_many("text", block, k=CANDIDATES_K)
            return len(block)

        one(0)  # the first query builds local mode's arrays; not what a running worker pays
        searched, search_s = _timed_loop(one, budget_s, queries)
        batched, batch_s = _timed_loop(batch, budget_s, queries)
    finally:
        client.delete_collection(name)
    return {
        "backend": backend,
        "points": count,
        "upsert_points_per_s": points / upsert_s,
        "upsert_batch": UPSERT_BATCH,
        "search_qps": searched / search_s,
        "search_k": SEARCH_K,
        "queries": searched,
        "batch_search_qps": batched / batch_s,
        "batch_search_k": CANDIDATES_K,
        "batch_size": CANDIDATE_BATCH,
    }


def bench_qdrant(
    sizes: Sequence[int],
    say: Say,
    url: str | None = None,
    api_key: str | None = None,
    queries: int = 200,
    budget_s: float = 10.0,
) -> dict[str, Any]:
    """Local mode at each size, then the server at `url` (if given) at each size.

    The headline figures are local mode's at the largest size (the server's when given).
    """
    runs = []
    for points in sizes:
        say(f"qdrant: local mode, {points:,} points")
        with warnings.catch_warnings():
            # local mode warns that it is slow above 20,000 points: that is what is measured
            warnings.simplefilter("ignore")
            runs.append(bench_qdrant_size(QdrantClient(":memory:"), "local", points, queries, budget_s))
    if url:
        client = QdrantClient(url=url, api_key=api_key, timeout=60)
        for points in sizes:
            say(f"qdrant: server {url}, {points:,} points")
            runs.append(bench_qdrant_size(client, "server", points, queries, budget_s))
    head = runs[-1]
    return {
        "backend": head["backend"],
        "points": head["points"],
        "upsert_points_per_s": head["upsert_points_per_s"],
        "search_qps": head["search_qps"],
        "runs": runs,
    }
