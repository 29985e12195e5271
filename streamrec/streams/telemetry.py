"""Prometheus metrics of a worker, created from a registry passed in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streamrec.model.base import FloatArray, Hit, VectorIndex

__all__ = ["Metrics", "TimedSearch", "serve_metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class Metrics:
    """Every series a worker exports. Names follow Prometheus conventions."""

    registry: CollectorRegistry
    events_consumed: Counter
    batch_seconds: Histogram
    batch_events: Histogram
    event_to_recommendation: Histogram
    recommendations: Counter
    encoder_batch_size: Histogram
    encoder_batch_seconds: Histogram
    encoder_texts: Counter
    encoder_sequences: Counter
    qdrant_upsert_seconds: Histogram
    ranking_seconds: Histogram
    candidate_search_seconds: Histogram
    qdrant_points: Counter
    deadletters: Counter
    consumer_lag: Gauge
    ready: Gauge
    online_hr: Gauge
    online_ndcg: Gauge
    cf_checkpoint_seconds: Histogram
    checkpoint_pause: Histogram
    model_entities: Gauge
    retries: Counter
    forgotten: Counter
    catalog_changes: Counter
    text_version: Gauge
    reencode_progress: Gauge
    api_seconds: Histogram
    duplicates: Counter
    learned: Counter
    catalog_waits: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry if registry is not None else CollectorRegistry()
        kw: dict[str, Any] = {"registry": r}
        return cls(
            registry=r,
            events_consumed=Counter(
                "streamrec_events_consumed_total",
                "Messages consumed, by topic and role",
                ["topic", "role"],
                **kw,
            ),
            batch_seconds=Histogram(
                "streamrec_processing_seconds",
                "Time to process one batch of messages, by role",
                ["role"],
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            batch_events=Histogram(
                "streamrec_batch_events",
                "Messages per processed batch, by role",
                ["role"],
                buckets=_SIZE_BUCKETS,
                **kw,
            ),
            event_to_recommendation=Histogram(
                "streamrec_event_to_recommendation_seconds",
                "From an event's Kafka timestamp to its recommendation being produced, by trigger topic",
                ["topic"],
                buckets=_LATENCY_BUCKETS,
                **kw,
            ),
            recommendations=Counter("streamrec_recommendations_total", "Recommendation lists produced", **kw),
            encoder_batch_size=Histogram(
                "streamrec_encoder_batch_size", "Texts per encoder batch", buckets=_SIZE_BUCKETS, **kw
            ),
            encoder_batch_seconds=Histogram(
                "streamrec_encoder_batch_seconds",
                "Time to encode one batch of texts",
                buckets=_LATENCY_BUCKETS,
                **kw,
            ),
            encoder_texts=Counter("streamrec_encoder_texts_total", "Texts encoded, by kind", ["kind"], **kw),
            encoder_sequences=Counter(
                "streamrec_encoder_sequences_total",
                "Texts the encoder read as sequences of their own, by kind (a review: one)",
                ["kind"],
                **kw,
            ),
            qdrant_upsert_seconds=Histogram(
                "streamrec_qdrant_upsert_seconds",
                "Time of one batched Qdrant upsert, by collection",
                ["collection"],
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            ranking_seconds=Histogram(
                "streamrec_ranking_seconds",
                "Time to rank for a slice of users: candidate search, blend, diversification, reasons",
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            candidate_search_seconds=Histogram(
                "streamrec_candidate_search_seconds",
                "Time of one batched nearest-neighbour search for candidates, by backend",
                ["backend"],
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            qdrant_points=Counter(
                "streamrec_qdrant_points_upserted_total",
                "Points upserted into Qdrant, by collection",
                ["collection"],
                **kw,
            ),
            deadletters=Counter(
                "streamrec_deadletter_total",
                "Messages sent to the dead-letter topic, by topic and reason",
                ["topic", "reason"],
                **kw,
            ),
            consumer_lag=Gauge(
                "streamrec_consumer_lag",
                "Messages behind the end of each assigned partition",
                ["topic", "partition", "role"],
                **kw,
            ),
            ready=Gauge(
                "streamrec_worker_ready",
                "1 once the role has joined its group and can process events",
                ["role"],
                **kw,
            ),
            online_hr=Gauge(
                "streamrec_online_hit_rate_at_10",
                "Rolling HR@10: share of interactions whose item was in the user's last recommendation",
                **kw,
            ),
            online_ndcg=Gauge(
                "streamrec_online_ndcg_at_10",
                "Rolling NDCG@10 of the last recommendation, per interaction",
                **kw,
            ),
            cf_checkpoint_seconds=Histogram(
                "streamrec_cf_checkpoint_seconds",
                "Time to write one CF checkpoint (model + offsets)",
                buckets=_LATENCY_BUCKETS,
                **kw,
            ),
            checkpoint_pause=Histogram(
                "streamrec_checkpoint_pause_seconds",
                "Time a role's event loop waits for one checkpoint (the fork of its snapshot)",
                ["role"],
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            model_entities=Gauge(
                "streamrec_model_entities", "Users or items known to a role's model", ["role", "kind"], **kw
            ),
            retries=Counter(
                "streamrec_retries_total",
                "Infrastructure operations retried, by operation",
                ["operation"],
                **kw,
            ),
            api_seconds=Histogram(
                "streamrec_api_request_seconds",
                "Time to answer an HTTP API request, by route and answer (stored, computed, error)",
                ["route", "answer"],
                buckets=_FAST_BUCKETS,
                **kw,
            ),
            catalog_changes=Counter(
                "streamrec_catalog_changes_total",
                "Items taken off lists (withdrawn, sold out, deleted) or put back, by change and role",
                ["change", "role"],
                **kw,
            ),
            text_version=Gauge(
                "streamrec_text_version",
                "1 for the encoder version whose text vectors a role writes (encoder) or serves",
                ["role", "version"],
                **kw,
            ),
            reencode_progress=Gauge(
                "streamrec_reencode_progress",
                "Share done of the move to a new encoder: of the topics read again (encoder), of the "
                "catalog the new version covers (recommender, api); 1 when none is under way",
                ["role"],
                **kw,
            ),
            forgotten=Counter(
                "streamrec_forgotten_users_total", "Users erased on request, by role", ["role"], **kw
            ),
            duplicates=Counter(
                "streamrec_duplicates_total",
                "Events ignored as repeats of a recent one, by topic and role",
                ["topic", "role"],
                **kw,
            ),
            learned=Counter(
                "streamrec_cf_events_learned_total",
                "Interactions the CF model learned from, by topic",
                ["topic"],
                **kw,
            ),
            catalog_waits=Counter(
                "streamrec_catalog_waits_total",
                "Batches held back because the catalog feed was behind the items they name, by role",
                ["role"],
                **kw,
            ),
        )


_lock = threading.Lock()


def serve_metrics(metrics: Metrics, host: str, port: int) -> int:
    """Expose the registry over HTTP; returns the bound port (useful with port 0)."""
    with _lock:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_address[1])


class TimedSearch:
    """A `VectorIndex` whose searches are timed into `streamrec_candidate_search_seconds`.

    The ranker searches through it; every other call goes to the index as it is.
    """

    def __init__(self, index: VectorIndex, metrics: Metrics, backend: str) -> None:
        self.index = index
        self.backend = backend
        self._seconds = metrics.candidate_search_seconds.labels(backend)

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: FloatArray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.index.upsert(name, ids, vectors, payloads)

    def search(self, name: str, query: FloatArray, k: int, exclude: Iterable[str] = ()) -> list[Hit]:
        return self.search_many(name, query[None, :], k, [exclude])[0]

    def search_many(
        self, name: str, queries: FloatArray, k: int, exclude: Sequence[Iterable[str]] | None = None
    ) -> list[list[Hit]]:
        started = time.perf_counter()
        try:
            return self.index.search_many(name, queries, k, exclude)
        finally:
            self._seconds.observe(time.perf_counter() - started)

    def get(self, name: str, ids: Sequence[str]) -> dict[str, FloatArray]:
        return self.index.get(name, ids)

    def delete(self, ids: Sequence[str]) -> None:
        self.index.delete(ids)
