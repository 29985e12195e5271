"""Messages between roles: vectors (`vectors` topic) and encoded reviews (`reviews-encoded`).

Vectors travel as base64 of little-endian float32, inside JSON, so that any Kafka
client can read them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from streamrec.model.dedupe import fingerprint
from streamrec.model.schemas import Review, Trigger

__all__ = [
    "EncodedReview",
    "decode_vector",
    "encode_vector",
    "encoded_review",
    "parse_encoded_review",
    "parse_vector",
    "review_key",
    "vector_key",
    "vector_message",
]

FloatArray = npt.NDArray[np.float32]


def encode_vector(vector: FloatArray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def vector_key(kind: str, name: str, id: str) -> bytes:
    """Compaction key: one live vector per entity and vector name."""
    return f"{kind}:{name}:{id}".encode()


def vector_message(
    kind: str, name: str, id: str, vector: FloatArray, version: str, ts: float, **extra: Any
) -> bytes:
    return orjson.dumps(
        {
            "kind": kind,
            "name": name,
            "id": id,
            "v": encode_vector(vector),
            "version": version,
            "ts": ts,
            **extra,
        }
    )


def parse_vector(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(raw)
    data["v"] = decode_vector(data["v"])
    return data


@dataclass(frozen=True)
class EncodedReview:
    user_id: str
    item_id: str
    rating: float | None
    ts: float
    review_id: str | None
    vector: FloatArray
    version: str
    trigger: Trigger


def review_key(review: Review) -> bytes:
    """Key of a review's vector in `reviews-encoded`: its author, then the review's identity.

    Starting with the user lets a `forget` request find (and tombstone) every review of theirs.
    """
    identity = review.review_id or fingerprint(review.item_id, review.ts, review.text).hex()
    return f"{review.user_id}\x1f{identity}".encode()


def encoded_review(review: Review, vector: FloatArray, version: str, trigger: Trigger) -> bytes:
    return orjson.dumps(
        {
            "user_id": review.user_id,
            "item_id": review.item_id,
            "rating": review.rating,
            "ts": review.ts,
            "review_id": review.review_id,
            "v": encode_vector(vector),
            "version": version,
            "trigger": trigger.model_dump(),
        }
    )


def parse_encoded_review(raw: bytes) -> EncodedReview:
    data = orjson.loads(raw)
    return EncodedReview(
        user_id=data["user_id"],
        item_id=data["item_id"],
        rating=data["rating"],
        ts=data["ts"],
        review_id=data["review_id"],
        vector=decode_vector(data["v"]),
        version=data["version"],
        trigger=Trigger(**data["trigger"]),
    )
