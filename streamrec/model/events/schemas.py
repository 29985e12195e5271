"""The event contract: typed schemas for every topic (`events.parser` enforces them on raw values).

Values are JSON objects in UTF-8. Ids are strings (integers are accepted and
normalized, so ``42`` and ``"42"`` are the same id). ``ts`` is epoch seconds
(milliseconds are recognised above 1e12) or an ISO-8601 string; it is stored as
float epoch seconds. Unknown fields are rejected so that a typo never passes
silently.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from streamrec.model.events.offsets import partition_key

__all__ = [
    "AspectView",
    "Audit",
    "Click",
    "DeadLetter",
    "Forget",
    "Impression",
    "Item",
    "ModelInfo",
    "RecommendedItem",
    "ReadableProfile",
    "Recommendation",
    "Review",
    "Trigger",
    "parse_id",
    "parse_ts",
]

MAX_ID_CHARS = 256


def parse_id(value: Any) -> str:
    """Normalize an id: strings are stripped, integers become their decimal form.

    >>> parse_id(42), parse_id(" a1 ")
    ('42', 'a1')
    """
    if isinstance(value, bool):
        raise ValueError(f"id must be a string or an integer, got {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if not isinstance(value, str):
        raise ValueError(f"id must be a string or an integer, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError("id must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"id must be at most {MAX_ID_CHARS} characters, got {len(value)}")
    if not value.isprintable():
        raise ValueError(f"id must not contain control characters, got {value[:40]!r}")
    return str(value)


def parse_ts(value: Any) -> float:
    """Epoch seconds from epoch seconds, epoch milliseconds or ISO-8601.

    >>> parse_ts(1404172800), parse_ts(1404172800000), parse_ts("2014-07-01T00:00:00+00:00")
    (1404172800.0, 1404172800.0, 1404172800.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"ts must be epoch seconds or ISO-8601, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ValueError(f"ts must be epoch seconds or ISO-8601, got {value[:40]!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.timestamp()
        value = number
    if not isinstance(value, int | float):
        raise ValueError(f"ts must be epoch seconds or ISO-8601, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"ts must be a finite, non-negative number, got {value!r}")
    if number > 1e12:  # milliseconds: 1e12 s would be the year 33658
        number /= 1000.0
    return number


Id = Annotated[str, BeforeValidator(parse_id), WithJsonSchema({"type": ["string", "integer"]})]
Timestamp = Annotated[
    float,
    BeforeValidator(parse_ts),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "number", "description": "epoch seconds (milliseconds above 1e12)"},
                {"type": "string", "description": "ISO-8601 date-time, UTC when no offset"},
            ]
        }
    ),
]
#: `dislike` and `skip` say the user did not want the item: negatives, for CF and for ranking.
EventKind = Literal["view", "click", "cart", "purchase", "dislike", "skip"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Click(_Event):
    """An implicit interaction (topic `clicks`, key `user_id`)."""

    user_id: Id
    item_id: Id
    event: EventKind
    ts: Timestamp


class Impression(_Event):
    """Items a user was shown, in the order shown (topic `clicks`, key `user_id`).

    An item shown and not taken is a weak negative for that user: each time it is shown again
    without a take it ranks lower on their lists, so lists do not keep repeating what a user
    keeps passing over; a take of it (a click, a review) clears that.
    """

    user_id: Id
    event: Literal["impression"]
    items: Annotated[list[Id], Field(min_length=1, max_length=200)]
    #: The list they came from: a recommendation's `generated_at`, or the shop's own id.
    list_id: Annotated[str, Field(max_length=200)] | None = None
    ts: Timestamp


class Review(_Event):
    """A review with text and an optional 1-5 rating (topic `reviews`, key `user_id`)."""

    user_id: Id
    item_id: Id
    text: str
    rating: Annotated[float, Field(ge=1, le=5)] | None = None
    ts: Timestamp
    review_id: Id | None = None


class Item(_Event):
    """A catalog entry (topic `items`, key `item_id`, compacted)."""

    item_id: Id
    title: Annotated[str, Field(min_length=1, max_length=1000)]
    description: str | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=200)] | None = None
    ts: Timestamp
    #: False takes the item out of every list (sold out, withdrawn) until a message says True again;
    #: a tombstone (a null value under the item's key) does the same for a deleted entry.
    available: bool = True
    #: A picture of the item (a path the encoder workers can read, a `data:` URI, or base64 bytes),
    #: embedded by the deployment's image model when one is configured (`STREAMREC_IMAGE_MODEL`).
    image: Annotated[str, Field(min_length=1)] | None = None
    #: Vectors of other modalities the producer computed (e.g. `{"image": [...]}`), each of a
    #: name and dimension the deployment declares (`STREAMREC_MODALITIES`).
    vectors: (
        Annotated[
            dict[
                Annotated[str, Field(min_length=1, max_length=64)],
                Annotated[list[float], Field(max_length=8192)],
            ],
            Field(max_length=16),
        ]
        | None
    ) = None

    def text(self) -> str:
        """The text the encoder reads: title, tags, then description."""
        parts = [self.title.strip()]
        if self.tags:
            parts.append(", ".join(t.strip() for t in self.tags if t.strip()))
        if self.description:
            parts.append(self.description.strip())
        return ". ".join(p for p in parts if p)


class Forget(_Event):
    """A request to erase a user (topic `forget`, key `user_id`)."""

    user_id: Id
    ts: Timestamp | None = None


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    reasons: list[str]


class Trigger(BaseModel):
    """The input message that caused a recommendation."""

    topic: str
    partition: int
    offset: int
    ts: float

    @property
    def position(self) -> tuple[str, int]:
        """Its partition as a map of offsets keys it (`partition_key`), and its offset."""
        return partition_key(self.topic, self.partition), self.offset


class ModelInfo(BaseModel):
    cf: str
    encoder: str


class Recommendation(BaseModel):
    """A ranked list for one user (topic `recommendations`, key `user_id`)."""

    user_id: str
    items: list[RecommendedItem]
    generated_at: Annotated[float, Field(description="epoch seconds")]
    trigger: Annotated[
        Trigger | None,
        Field(description="the input message the list answers; null for a list computed on request"),
    ] = None
    model: ModelInfo


class Evidence(BaseModel):
    """Words of a review: a slice of its text, and the polarity it reads."""

    text: str
    polarity: float
    item_id: str


class AspectView(BaseModel):
    """What a user wrote of one aspect."""

    aspect: str
    label: str
    mentions: int
    praised: int
    criticized: int
    #: Share of the user's aspect mentions that are of this aspect.
    weight: float
    evidence: list[Evidence]


class ItemView(BaseModel):
    item_id: str
    title: str | None
    evidence: list[Evidence] = []


class ReadableProfile(BaseModel):
    """What streamrec knows of a user, in words and numbers (topic `profiles`, key `user_id`, compacted)."""

    user_id: str
    language: str
    summary: str
    cares_about: list[AspectView]
    liked: list[ItemView]
    disliked: list[ItemView]
    #: Reviews read, their mean polarity, and how demanding that makes the user.
    reviews: int
    mean_polarity: float | None
    demanding: str
    updated_at: float


class Audit(BaseModel):
    """What a role erased for a `forget` request (topic `audit`, key `user_id`)."""

    user_id: str
    role: str
    erased: list[str]
    request: Trigger
    completed_at: float


class DeadLetter(BaseModel):
    """A rejected message (topic `deadletter`): where it came from and why."""

    source_topic: str
    partition: int
    offset: int
    reason: Annotated[str, Field(description="stable short code, e.g. invalid_json")]
    error: str
    raw: Annotated[str, Field(description="the value, UTF-8, or base64 when not valid UTF-8")]
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    raw_size: int
    raw_truncated: bool = False
    ts: float
