"""The parser of raw message values: the event contract enforced once, at the boundary, within limits.

>>> parser = EventParser()
>>> click = parser.click(b'{"user_id": 7, "item_id": "B00A", "event": "click", "ts": "2014-07-01T00:00:00Z"}')
>>> click.user_id, click.item_id, click.ts
('7', 'B00A', 1404172800.0)
>>> try:
...     parser.click(b'{"user_id": 7}')
... except InvalidEvent as e:
...     print(e.reason)
invalid_fields
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Click, Forget, Impression, Item, Review

__all__ = ["EventParser", "Limits"]


class Limits(BaseModel):
    """Bounds on accepted input; larger or odder messages are rejected with a reason.

    Parameters
    ----------
    max_message_bytes
        Largest accepted value, in bytes.
    max_text_chars
        Longest accepted review text or item description, in characters.
    max_future_s
        How far in the future (wall clock) a `ts` may lie.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_message_bytes: int = Field(default=1_000_000, ge=1024, description="largest accepted message value")
    max_text_chars: int = Field(
        default=20_000, ge=1, description="longest accepted review text or description"
    )
    max_future_s: float = Field(default=86_400.0, ge=0, description="how far ahead of the clock a ts may be")


E = TypeVar("E", bound=BaseModel)


class EventParser:
    """Validates raw message values against the contract, once, at the boundary.

    Every failure raises `InvalidEvent` with a stable `reason` code:
    `too_large`, `invalid_utf8`, `invalid_json`, `not_an_object`, `invalid_fields`,
    `empty_text`, `text_too_long`, `ts_in_future`, `invalid_vector`.
    """

    def __init__(self, limits: Limits | None = None, modalities: Mapping[str, int] | None = None) -> None:
        self.limits = limits or Limits()
        #: Item vectors producers may send, by name: their dimension.
        self.modalities = dict(modalities or {})

    def click(self, raw: bytes) -> Click | Impression:
        """A message of `clicks`: an interaction, or an impression (`"event": "impression"`)."""
        obj = self._load(raw)
        if obj.get("event") == "impression":
            return self._validate(Impression, obj)
        return self._validate(Click, obj)

    def review(self, raw: bytes) -> Review:
        review = self._parse(Review, raw)
        self._check_text("text", review.text, required=True)
        return review

    def item(self, raw: bytes) -> Item:
        item = self._parse(Item, raw)
        self._check_text("description", item.description or "", required=False)
        self._check_vectors(item.vectors or {})
        return item

    def _check_vectors(self, vectors: Mapping[str, list[float]]) -> None:
        declared = ", ".join(f"{n} ({d})" for n, d in self.modalities.items()) or "none"
        for name, values in vectors.items():
            dim = self.modalities.get(name)
            if dim is None:
                raise InvalidEvent(
                    "invalid_vector",
                    f"vectors[{name!r}] is not a declared modality (declared: {declared}; "
                    "declare one with its dimension in STREAMREC_MODALITIES)",
                )
            if len(values) != dim:
                raise InvalidEvent(
                    "invalid_vector", f"vectors[{name!r}] must have {dim} numbers, got {len(values)}"
                )
            # (NaN and infinities are not JSON; numbers beyond float32, in which vectors travel, are.)
            with np.errstate(over="ignore"):
                array = np.asarray(values, dtype=np.float32)
            if not np.isfinite(array).all():
                raise InvalidEvent(
                    "invalid_vector", f"vectors[{name!r}] must hold numbers within float32's range"
                )
            if not array.any():
                raise InvalidEvent(
                    "invalid_vector", f"vectors[{name!r}] must not be all zeros (it has no direction)"
                )

    def forget(self, raw: bytes) -> Forget:
        return self._parse(Forget, raw)

    def _parse(self, schema: type[E], raw: bytes) -> E:
        return self._validate(schema, self._load(raw))

    def _load(self, raw: bytes) -> dict[str, Any]:
        if raw is None:
            raise InvalidEvent("invalid_json", "value must be a JSON object, got an empty (null) value")
        if len(raw) > self.limits.max_message_bytes:
            raise InvalidEvent(
                "too_large",
                f"value must be at most {self.limits.max_message_bytes} bytes, got {len(raw)}",
            )
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidEvent("invalid_utf8", "value must be UTF-8 encoded JSON") from None
            raise InvalidEvent("invalid_json", f"value must be JSON, got a parse error: {exc}") from None
        if not isinstance(obj, dict):
            raise InvalidEvent("not_an_object", f"value must be a JSON object, got {type(obj).__name__}")
        return obj

    def _validate(self, schema: type[E], obj: dict[str, Any]) -> E:
        try:
            event = schema.model_validate(obj)
        except ValidationError as exc:
            raise InvalidEvent("invalid_fields", _describe(schema.__name__, exc)) from None
        ts = getattr(event, "ts", None)
        if ts is not None and ts > time.time() + self.limits.max_future_s:
            raise InvalidEvent(
                "ts_in_future",
                f"ts must be at most {self.limits.max_future_s:.0f}s in the future, got {ts!r}",
            )
        return event

    def _check_text(self, name: str, text: str, *, required: bool) -> None:
        if required and not text.strip():
            raise InvalidEvent("empty_text", f"{name!r} must contain text, got {text[:20]!r}")
        if len(text) > self.limits.max_text_chars:
            raise InvalidEvent(
                "text_too_long",
                f"{name!r} must be at most {self.limits.max_text_chars} characters, got {len(text)}",
            )


def _describe(schema: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "value"
        seen = err.get("input")
        seen_text = repr(seen)[:60] if err["type"] != "missing" else "nothing"
        parts.append(f"{loc!r}: {err['msg']} (got {seen_text})")
    more = f" and {exc.error_count() - 5} more" if exc.error_count() > 5 else ""
    return f"{schema} is invalid: " + "; ".join(parts) + more
