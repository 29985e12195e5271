"""The public contract: JSON Schema of every topic that clients produce to or consume from."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from streamrec.model.events.schemas import (
    Click,
    DeadLetter,
    Forget,
    Impression,
    Item,
    ReadableProfile,
    Recommendation,
    Review,
)

__all__ = ["PUBLIC_TOPICS", "topic_schemas"]

#: Topic name (before the prefix) to the model of its values and the key it takes.
PUBLIC_TOPICS: dict[str, tuple[Any, str]] = {
    "clicks": (Click | Impression, "user_id"),
    "reviews": (Review, "user_id"),
    "items": (Item, "item_id"),
    "forget": (Forget, "user_id"),
    "recommendations": (Recommendation, "user_id"),
    "profiles": (ReadableProfile, "user_id"),
    "deadletter": (DeadLetter, "none"),
}


def topic_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) per topic, with the message key noted."""
    out = {}
    for topic, (model, key) in PUBLIC_TOPICS.items():
        schema = TypeAdapter(model).json_schema(
            mode="validation" if topic in ("clicks", "reviews", "items", "forget") else "serialization"
        )
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-kafka-topic"] = topic
        schema["x-kafka-key"] = key
        out[topic] = schema
    return out
