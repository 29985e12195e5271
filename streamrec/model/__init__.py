"""What the workers run, with no I/O to Kafka, Prometheus or a network client: the rooms below, and
their public surface re-exported here. The text encoder (torch, transformers) is imported on first use.

May import: model.
"""

from __future__ import annotations

from typing import Any

from streamrec.model.cf.mf import OnlineCF
from streamrec.model.errors import DatasetError, EncoderError, InvalidEvent, StreamrecError
from streamrec.model.events.dedupe import Deduplicator
from streamrec.model.events.parser import EventParser, Limits
from streamrec.model.events.schemas import Click, Forget, Item, Recommendation, Review
from streamrec.model.index import MemoryIndex
from streamrec.model.metrics.online import ReplayScorer, RollingHitRate
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.ranker import HybridRanker, Request, Scored
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.users.profile import UserProfile

__all__ = [
    "Click",
    "CoOccurrence",
    "DatasetError",
    "Deduplicator",
    "EncoderError",
    "EventParser",
    "Forget",
    "HybridRanker",
    "InvalidEvent",
    "Item",
    "ItemTexts",
    "Limits",
    "MemoryIndex",
    "OnlineCF",
    "Popularity",
    "Recommendation",
    "Recommender",
    "ReplayScorer",
    "Request",
    "Review",
    "RollingHitRate",
    "Scored",
    "StreamrecError",
    "TransformerEncoder",
    "UserProfile",
]


def __getattr__(name: str) -> Any:
    if name == "TransformerEncoder":
        from streamrec.model.text.encoder import TransformerEncoder

        return TransformerEncoder
    raise AttributeError(f"module 'streamrec.model' has no attribute {name!r}")
