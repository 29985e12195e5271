"""The HTTP API: lists on request, readable profiles, similar items, health, and its OpenAPI document.

Served with aiohttp, which faust already carries, on the worker's own event loop: a request reads
the state the role's feeds keep, with no thread, lock or copy between them, and no second server
taking over the worker's signal handling. Its document is built from the same pydantic models as
the topics' contract, and its parameters from the models that read them, so that neither can
disagree with it (`streamrec.streams.roles.api.openapi`, `streamrec.streams.roles.api.params`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from streamrec.streams.roles.api.answers import Answers, json_response
from streamrec.streams.roles.api.middleware import ANSWER, bearer_middleware, errors_middleware
from streamrec.streams.roles.api.openapi import longest_request_line, openapi, render_docs
from streamrec.streams.roles.api.params import Invalid, path_id, queries
from streamrec.streams.telemetry import Metrics

__all__ = ["create_api"]


def create_api(
    answers: Answers, metrics: Metrics, default_k: int = 10, token: str | None = None
) -> web.Application:
    """The aiohttp application answering from `answers`; with a `token`, only to who presents it."""
    middlewares = [errors_middleware(metrics)]
    if token is not None:
        middlewares.append(bearer_middleware(token))
    described = openapi(default_k, secured=token is not None)
    # Every request the document allows is read, however long its URL (aiohttp stops at 8 KiB).
    handler_args = {"max_line_size": max(8190, longest_request_line(described))}
    app = web.Application(middlewares=middlewares, handler_args=handler_args)
    document = orjson.dumps(described)
    query = queries(default_k)  # the models the document's parameters were written from

    async def recommendations(request: web.Request) -> web.Response:
        user = path_id(request, "user_id")
        asked = query.recommendations.read(request)
        k, tags, exclude = asked.k, asked.tags, asked.exclude
        stored = answers.stored(user) if not tags and not exclude and k <= default_k else None
        if stored is not None:
            # Published lists hold `default_k` items (fewer only when nothing else may be listed):
            # served as published, or cut to `k`, unless one of them has gone off sale or out of the
            # rules since (its renewal on the way): then the list is computed now.
            message = orjson.loads(stored)
            if answers.listable([i["item_id"] for i in message["items"]]):
                request[ANSWER] = "stored"
                if k < default_k:
                    message["items"] = message["items"][:k]
                    stored = orjson.dumps(message)
                return json_response(stored, headers={"X-Streamrec-List": "stored"})
        request[ANSWER] = "computed"
        listed = answers.recommend(user, k, tags, exclude)
        return json_response(listed.model_dump(), headers={"X-Streamrec-List": "computed"})

    async def profile(request: web.Request) -> web.Response:
        user = path_id(request, "user_id")
        query.profile.read(request)
        view = answers.profile(user)
        if view is None:
            raise Invalid(404, "unknown_user", f"no events of user {user!r} have been seen: no profile yet")
        return json_response(view.model_dump())

    async def similar(request: web.Request) -> web.Response:
        item = path_id(request, "item_id")
        found = answers.similar(item, query.similar.read(request).k)
        if found is None:
            raise Invalid(404, "unknown_item", f"item {item!r} is not in the catalog, or is off sale")
        return json_response(found.model_dump())

    async def healthz(request: web.Request) -> web.Response:
        health = answers.health()
        return json_response(health.model_dump(), status=200 if health.ready else 503)

    async def spec(request: web.Request) -> web.Response:
        return json_response(document)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=render_docs(orjson.loads(document)), content_type="text/html")

    app.router.add_get("/v1/users/{user_id}/recommendations", recommendations)
    app.router.add_get("/v1/users/{user_id}/profile", profile)
    app.router.add_get("/v1/items/{item_id}/similar", similar)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", spec)
    app.router.add_get("/docs", docs)
    return app
