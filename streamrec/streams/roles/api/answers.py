"""What the HTTP API answers with: its bodies' models, the state it asks, and its JSON response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from streamrec.model.events.schemas import ReadableProfile, Recommendation, RecommendedItem

__all__ = ["Answers", "ApiError", "Health", "SimilarItems", "json_response"]


class SimilarItems(BaseModel):
    """Items like one item, by what they are (text, else CF vectors), under the deployment's rules."""

    item_id: str
    items: list[RecommendedItem]


class Health(BaseModel):
    """Whether the API answers from complete state, and if not, why."""

    ready: bool
    why: str


class ApiError(BaseModel):
    """What was wrong with a request, and what was expected."""

    error: str = Field(description="a stable code: invalid_parameter, unknown_user, unknown_item, ...")
    message: str


class Answers(Protocol):
    """What the API asks of the state behind it (the `api` role's copy of the recommender)."""

    def stored(self, user_id: str) -> bytes | None:
        """The latest list published for the user (a `recommendations` message), if any."""

    def listable(self, item_ids: list[str]) -> bool:
        """Whether every item may be listed now (on sale, allowed by the rules)."""

    def recommend(self, user_id: str, k: int, tags: list[str], exclude: list[str]) -> Recommendation: ...

    def profile(self, user_id: str) -> ReadableProfile | None: ...

    def similar(self, item_id: str, k: int) -> SimilarItems | None: ...

    def health(self) -> Health: ...


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """`body` as a JSON response; bytes are taken as JSON already."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type="application/json", headers=headers)
