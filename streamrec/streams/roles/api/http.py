"""The HTTP API: lists on request, readable profiles, similar items, health, and its OpenAPI document.

Served with aiohttp, which faust already carries, on the worker's own event loop: a request reads
the state the role's feeds keep, with no thread, lock or copy between them, and no second server
taking over the worker's signal handling. Its document is built from the same pydantic models as
the topics' contract, so the two cannot disagree.
"""

from __future__ import annotations

import hmac
import html
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from streamrec.model.events.schemas import ReadableProfile, Recommendation, RecommendedItem
from streamrec.streams.telemetry import Metrics

__all__ = ["Answers", "ApiError", "Health", "SimilarItems", "create_api", "openapi"]

log = logging.getLogger(__name__)

#: Most items one request may ask for.
MAX_K = 100


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


class _Invalid(Exception):
    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type="application/json", headers=headers)


def _params(request: web.Request, allowed: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        expected = ", ".join(f"{name} ({what})" for name, what in allowed.items())
        raise _Invalid(400, "invalid_parameter", f"unknown parameter {unknown[0]!r}: expected {expected}")
    return {name: request.query[name] for name in allowed if name in request.query}


def _k(given: Mapping[str, str], default: int) -> int:
    raw = given.get("k")
    if raw is None:
        return default
    try:
        k = int(raw)
    except ValueError:
        raise _Invalid(
            400, "invalid_parameter", f"k must be an integer from 1 to {MAX_K}, got {raw!r}"
        ) from None
    if not 1 <= k <= MAX_K:
        raise _Invalid(400, "invalid_parameter", f"k must be an integer from 1 to {MAX_K}, got {k}")
    return k


def _names(given: Mapping[str, str], name: str) -> list[str]:
    raw = given.get(name)
    if raw is None:
        return []
    names = [n.strip() for n in raw.split(",")]
    if not all(names) or len(names) > 1000:
        raise _Invalid(
            400,
            "invalid_parameter",
            f"{name} must be 1 to 1000 comma-separated, non-empty names, got {raw[:80]!r}",
        )
    return names


def create_api(
    answers: Answers, metrics: Metrics, default_k: int = 10, token: str | None = None
) -> web.Application:
    """The aiohttp application answering from `answers`; with a `token`, only to who presents it."""
    middlewares = [_errors(metrics)] if token is None else [_errors(metrics), _bearer(token)]
    app = web.Application(middlewares=middlewares)
    document = orjson.dumps(openapi(default_k, secured=token is not None))

    async def recommendations(request: web.Request) -> web.Response:
        user = request.match_info["user_id"]
        given = _params(request, _LIST_PARAMS)
        k = _k(given, default_k)
        tags, exclude = _names(given, "tags"), _names(given, "exclude")
        stored = answers.stored(user) if not tags and not exclude and k <= default_k else None
        if stored is not None:
            # Published lists hold `default_k` items (fewer only when nothing else may be listed):
            # served as published, or cut to `k`, unless one of them has gone off sale or out of the
            # rules since (its renewal on the way): then the list is computed now.
            message = orjson.loads(stored)
            if answers.listable([i["item_id"] for i in message["items"]]):
                request["answer"] = "stored"
                if k < default_k:
                    message["items"] = message["items"][:k]
                    stored = orjson.dumps(message)
                return _json(stored, headers={"X-Streamrec-List": "stored"})
        request["answer"] = "computed"
        listed = answers.recommend(user, k, tags, exclude)
        return _json(listed.model_dump(), headers={"X-Streamrec-List": "computed"})

    async def profile(request: web.Request) -> web.Response:
        user = request.match_info["user_id"]
        _params(request, {})
        view = answers.profile(user)
        if view is None:
            raise _Invalid(404, "unknown_user", f"no events of user {user!r} have been seen: no profile yet")
        return _json(view.model_dump())

    async def similar(request: web.Request) -> web.Response:
        item = request.match_info["item_id"]
        k = _k(_params(request, {"k": f"items, 1-{MAX_K}, default {default_k}"}), default_k)
        found = answers.similar(item, k)
        if found is None:
            raise _Invalid(404, "unknown_item", f"item {item!r} is not in the catalog, or is off sale")
        return _json(found.model_dump())

    async def healthz(request: web.Request) -> web.Response:
        health = answers.health()
        return _json(health.model_dump(), status=200 if health.ready else 503)

    async def spec(request: web.Request) -> web.Response:
        return _json(document)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=render_docs(orjson.loads(document)), content_type="text/html")

    app.router.add_get("/v1/users/{user_id}/recommendations", recommendations)
    app.router.add_get("/v1/users/{user_id}/profile", profile)
    app.router.add_get("/v1/items/{item_id}/similar", similar)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", spec)
    app.router.add_get("/docs", docs)
    return app


_LIST_PARAMS = {
    "k": f"items, 1-{MAX_K}",
    "tags": "comma-separated tags, any of which an item must have",
    "exclude": "comma-separated item ids to leave out",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _errors(metrics: Metrics) -> Any:
    """Every failure answers in JSON with what was expected; an unexpected one is logged, not raised."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "none"
        answer = "error"
        try:
            response = await handler(request)
            answer = request.get("answer", "ok")
            return response
        except _Invalid as exc:
            body = ApiError(error=exc.error, message=exc.message).model_dump()
            return _json(body, status=exc.status, headers=exc.headers)
        except web.HTTPException as exc:
            headers = None
            if exc.status == 404:
                message = f"no such path {request.path!r}: see /docs for the API"
            elif exc.status == 405:
                message = f"{request.method} is not allowed on {request.path!r}: the API answers GET"
                allowed = getattr(exc, "allowed_methods", None) or {"GET"}
                headers = {"Allow": ", ".join(sorted(allowed))}
            else:
                message = exc.reason
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            return _json(
                ApiError(error=code, message=message).model_dump(), status=exc.status, headers=headers
            )
        except Exception:
            log.exception("the API failed on %s %s", request.method, request.path_qs)
            failed = ApiError(error="internal", message="streamrec failed to answer; the error is logged")
            return _json(failed.model_dump(), status=500)
        finally:
            metrics.api_seconds.labels(route, answer).observe(time.perf_counter() - started)

    return middleware


#: What answers without the token: whether the process is ready (no personal data in it).
OPEN_PATHS = frozenset({"/healthz"})


def _bearer(token: str) -> Any:
    """Every request but `OPEN_PATHS` must carry ``Authorization: Bearer <token>``; else 401."""
    expected = token.encode("utf-8")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), expected):
                said = "a wrong token" if scheme.lower() == "bearer" else "no bearer token"
                raise _Invalid(
                    401,
                    "unauthorized",
                    f"this API asks for its token (Authorization: Bearer <token>); the request "
                    f"carried {said}",
                    headers={"WWW-Authenticate": 'Bearer realm="streamrec"'},
                )
        return await handler(request)

    return middleware


def openapi(default_k: int = 10, secured: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, its schemas taken from the models it answers with."""
    models: list[type[BaseModel]] = [Recommendation, ReadableProfile, SimilarItems, Health, ApiError]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    def path_param(name: str, what: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": what,
        }

    k = {
        "name": "k",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": default_k},
        "description": "how many items",
    }
    names = {"type": "string", "pattern": "^[^,]+(,[^,]+)*$"}
    bad = {"description": "a parameter out of range, malformed or unknown", **ref("ApiError")}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "streamrec",
            "version": "1",
            "description": "Recommendations on request, beside the `recommendations` topic. Every list obeys "
            "the deployment's rules, and leaves out items off sale.",
        },
        "paths": {
            "/v1/users/{user_id}/recommendations": {
                "get": {
                    "summary": "A user's list",
                    "description": "The list last published for the user (header X-Streamrec-List: "
                    "stored), or one computed now (computed) when there is none, or when tags or exclude "
                    "are given. A user streamrec has not seen gets what is popular and new, with reasons "
                    "that say so.",
                    "parameters": [
                        path_param("user_id", "the user, as in the events"),
                        k,
                        {"name": "tags", "in": "query", "schema": names, "description": _LIST_PARAMS["tags"]},
                        {
                            "name": "exclude",
                            "in": "query",
                            "schema": names,
                            "description": _LIST_PARAMS["exclude"],
                        },
                    ],
                    "responses": {"200": {"description": "the list", **ref("Recommendation")}, "400": bad},
                }
            },
            "/v1/users/{user_id}/profile": {
                "get": {
                    "summary": "What streamrec knows of a user, in words",
                    "parameters": [path_param("user_id", "the user")],
                    "responses": {
                        "200": {"description": "the readable profile", **ref("ReadableProfile")},
                        "404": {"description": "no event of the user was seen", **ref("ApiError")},
                    },
                }
            },
            "/v1/items/{item_id}/similar": {
                "get": {
                    "summary": "Items like one item",
                    "parameters": [path_param("item_id", "the item"), k],
                    "responses": {
                        "200": {"description": "similar items", **ref("SimilarItems")},
                        "400": bad,
                        "404": {"description": "the item is unknown or off sale", **ref("ApiError")},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Ready or not, and why",
                    "responses": {
                        "200": {"description": "ready", **ref("Health")},
                        "503": {"description": "still reading the topics", **ref("Health")},
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
    if secured:
        document["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"token": []}]
        refused = {"description": "no token, or a wrong one", **ref("ApiError")}
        for path, operations in document["paths"].items():
            for operation in operations.values():
                if path in OPEN_PATHS:
                    operation["security"] = []
                else:
                    operation["responses"]["401"] = refused
        for path in ("/openapi.json", "/docs"):
            document["paths"][path] = {"get": {"summary": "This document" if path == "/openapi.json"
                                               else "This document as a page",
                                               "responses": {"200": {"description": "the document"},
                                                             "401": refused}}}  # fmt: skip
    return document


def render_docs(document: Mapping[str, Any]) -> str:
    """The API's document as a page a person reads (no script, nothing fetched from elsewhere)."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>streamrec API</title><style>"
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "code{background:#f3f3f3;padding:0 .25rem}table{border-collapse:collapse;width:100%;margin:.5rem 0}"
        "td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}"
        "h2{margin-top:2rem;font-family:monospace}</style></head><body>",
        f"<h1>{e(document['info']['title'])} API</h1><p>{e(document['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2>{e(method.upper())} {e(path)}</h2><p><b>{e(op['summary'])}</b>. ")
            parts.append(f"{e(op.get('description', ''))}</p>")
            if op.get("parameters"):
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>what</th></tr>")
                for p in op["parameters"]:
                    schema = p["schema"]
                    kind = schema.get("type", "")
                    if "minimum" in schema:
                        kind += f" {schema['minimum']}-{schema['maximum']}, default {schema['default']}"
                    parts.append(
                        f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                        f"<td>{e(kind)}</td><td>{e(p.get('description', ''))}</td></tr>"
                    )
                parts.append("</table>")
            parts.append("<table><tr><th>status</th><th>answer</th></tr>")
            for status, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                name = schema.get("$ref", "").rsplit("/", 1)[-1]
                what = f"{e(response['description'])} <code>{e(name)}</code>"
                parts.append(f"<tr><td>{e(status)}</td><td>{what}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
