"""Messages between roles: vectors (`vectors`), encoded reviews (`reviews-encoded`), the CF group's
log (`cf-deltas`: claims, delta parts, commits).

Vectors travel as base64 of little-endian float32, inside JSON, so that any Kafka
client can read them.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from streamrec.model.base import FloatArray
from streamrec.model.cf.fence import Claim, Commit
from streamrec.model.cf.learner import DeltaBatch
from streamrec.model.events.dedupe import review_identity
from streamrec.model.events.schemas import Review, Trigger
from streamrec.model.text.opinions import Opinion
from streamrec.model.text.reader import Reading
from streamrec.model.text.reviews import EncodedReview

__all__ = [
    "availability_message",
    "decode_vector",
    "encode_vector",
    "encoded_review",
    "group_message",
    "is_version_marker",
    "parse_encoded_review",
    "parse_group_message",
    "parse_review_key",
    "parse_vector",
    "parse_vector_key",
    "review_key",
    "vector_key",
    "vector_message",
    "version_marker",
]

_SEPARATOR = "\x1f"


def encode_vector(vector: FloatArray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def vector_key(kind: str, name: str, id: str) -> bytes:
    """Compaction key: one live vector per entity and vector name.

    >>> vector_key("user", "cf", "a:b"), parse_vector_key(vector_key("user", "cf", "a:b"))
    (b'user:cf:a:b', ('user', 'cf', 'a:b'))
    """
    return f"{kind}:{name}:{id}".encode()


def parse_vector_key(key: bytes) -> tuple[str, str, str]:
    """`(kind, name, id)` of a `vector_key` (ids may hold colons)."""
    kind, _, rest = key.decode("utf-8", "replace").partition(":")
    name, _, id = rest.partition(":")
    return kind, name, id


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


def availability_message(id: str, available: bool, ts: float, reason: str, **extra: Any) -> bytes:
    """An item's text slot without a vector: it left the catalog (`available` False: withdrawn,
    sold out, deleted), or it is on sale with no text of its own to encode.

    It goes under the item's text-vector key, so the compacted topic keeps one record of the
    item's state: its vector while it is on sale, the withdrawal while it is not.

    >>> parse_vector(availability_message("x", False, 1.0, "deleted"))["available"]
    False
    """
    state = {"available": available, "ts": ts, "reason": reason, **extra}
    return orjson.dumps({"kind": "item", "name": "text", "id": id, **state})


def parse_vector(raw: bytes) -> dict[str, Any]:
    """A `vector_message` (or an `availability_message`: then `v` is None), vector decoded."""
    data: dict[str, Any] = orjson.loads(raw)
    data["v"] = decode_vector(data["v"]) if data.get("v") is not None else None
    data.setdefault("available", True)
    return data


def version_marker(version: str, dim: int, items: int, reviews: int, ts: float) -> bytes:
    """Sent by the encoder role on every partition of `vectors` and `reviews-encoded` once it has
    read the catalog and the reviews on the topics again under `version`: a reader that has met it
    on every partition holds all of that version's vectors, and may switch to them.

    >>> is_version_marker(version_marker("minilm", 384, 10, 3, 0.0))
    True
    """
    marker = {"kind": "encoder", "name": "version", "version": version, "dim": dim}
    return orjson.dumps({**marker, "items": items, "reviews": reviews, "ts": ts})


def is_version_marker(raw: bytes | None) -> bool:
    """Whether a message of `vectors` or `reviews-encoded` is a `version_marker`."""
    return raw is not None and raw.startswith(b'{"kind":"encoder"')


def review_key(review: Review) -> bytes:
    """Key of a review's vector in `reviews-encoded`: its author, then the review's identity.

    Starting with the user lets a `forget` request find (and tombstone) every review of theirs.

    >>> review = Review(user_id="ann", item_id="x", text="Warm.", ts=1.0, review_id="r1")
    >>> review_key(review), parse_review_key(review_key(review))
    (b'ann\\x1fr1', ('ann', 'r1'))
    """
    return f"{review.user_id}{_SEPARATOR}{review_identity(review)}".encode()


def parse_review_key(key: bytes) -> tuple[str, str]:
    """`(user_id, identity)` of a `review_key`."""
    user, _, identity = key.decode("utf-8", "replace").partition(_SEPARATOR)
    return user, identity


def encoded_review(
    review: Review, reading: Reading, version: str, trigger: Trigger, reencoded: bool = False
) -> bytes:
    """A review as read: its vector, its polarity and its opinions (each with its polarity and
    the span it quotes of the review as a person reads it), as scalars: no vector per opinion.
    `reencoded`: read again by a new encoder (its author's profile holds it already)."""
    extra = {"reencoded": True} if reencoded else {}
    return orjson.dumps(
        {
            "user_id": review.user_id,
            "item_id": review.item_id,
            "rating": review.rating,
            "ts": review.ts,
            "review_id": review.review_id,
            "v": encode_vector(reading.vector),
            "version": version,
            "trigger": trigger.model_dump(),
            "polarity": round(reading.polarity, 4),
            "opinions": [o.to_dict() for o in reading.opinions],
            **extra,
        }
    )


def parse_encoded_review(raw: bytes, key: bytes) -> EncodedReview:
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
        key=key,
        identity=parse_review_key(key)[1],
        # Written by an encoder older than the reading of polarities: read as unread.
        polarity=data.get("polarity"),
        opinions=tuple(Opinion.from_dict(o) for o in data.get("opinions", ())),
        reencoded=bool(data.get("reencoded", False)),
    )


def group_message(message: Claim | Commit | DeltaBatch) -> bytes:
    """A record of the CF group's log (topic `cf-deltas`, key: the worker)."""
    if isinstance(message, Claim):
        return orjson.dumps({"kind": "claim", "worker": message.worker, "partitions": message.partitions})
    if isinstance(message, Commit):
        covers = {tp: [offset, claim] for tp, (offset, claim) in message.covers.items()}
        return orjson.dumps(
            {
                "kind": "commit",
                "worker": message.worker,
                "attempt": message.attempt,
                "parts": message.parts,
                "covers": covers,
            }
        )
    items = {item: encode_vector(row) for item, row in message.items.items()}
    return orjson.dumps(
        {
            "kind": "part",
            "worker": message.worker,
            "seq": message.seq,
            "part": message.part,
            "attempt": message.attempt,
            "items": items,
        }
    )


def parse_group_message(raw: bytes) -> Claim | Commit | DeltaBatch:
    """The inverse of `group_message`; a part written before claims and commits (no "kind") is a
    `DeltaBatch` with no attempt."""
    data = orjson.loads(raw)
    kind = data.get("kind", "part")
    if kind == "claim":
        return Claim(data["worker"], {str(tp): str(c) for tp, c in data["partitions"].items()})
    if kind == "commit":
        covers = {str(tp): (int(offset), str(claim)) for tp, (offset, claim) in data["covers"].items()}
        return Commit(data["worker"], data["attempt"], int(data["parts"]), covers)
    items = {str(item): decode_vector(row) for item, row in data["items"].items()}
    return DeltaBatch(data["worker"], data["seq"], data["part"], items, data.get("attempt", ""))
