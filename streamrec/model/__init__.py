"""Recommendation logic with no I/O to Kafka or Prometheus: what the workers run, and what
offline evaluation (`streamrec.eval`) measures.

The text encoder (torch, transformers) is imported on first use, so that importing this
package stays light.
"""

from __future__ import annotations

from typing import Any

from streamrec.model.catalog import ItemTexts
from streamrec.model.cf import OnlineCF
from streamrec.model.dedupe import Deduplicator
from streamrec.model.errors import DatasetError, EncoderError, InvalidEvent, StreamrecError
from streamrec.model.index import MemoryIndex
from streamrec.model.online import ReplayScorer, RollingHitRate
from streamrec.model.popularity import CoOccurrence, Popularity
from streamrec.model.profile import UserProfile
from streamrec.model.ranker import HybridRanker, Request, Scored
from streamrec.model.recommender import Recommender
from streamrec.model.schemas import Click, EventParser, Forget, Item, Limits, Recommendation, Review

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
        from streamrec.model.encoder import TransformerEncoder

        return TransformerEncoder
    raise AttributeError(f"module 'streamrec.model' has no attribute {name!r}")
