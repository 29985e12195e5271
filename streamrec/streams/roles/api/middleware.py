"""The HTTP API's middlewares: every failure answered in JSON, and the bearer token asked for."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from streamrec.streams.roles.api.answers import ApiError, json_response
from streamrec.streams.roles.api.params import Invalid
from streamrec.streams.telemetry import Metrics

__all__ = ["ANSWER", "OPEN_PATHS", "Handler", "bearer_middleware", "errors_middleware"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: How a handler answered (a stored or a computed list), for the requests' metric.
ANSWER = web.RequestKey("answer", str)

#: What answers without the token: whether the process is ready (no personal data in it).
OPEN_PATHS = frozenset({"/healthz"})


def errors_middleware(metrics: Metrics) -> Any:
    """Every failure answers in JSON with what was expected; an unexpected one is logged, not raised."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "none"
        answer = "error"
        try:
            response = await handler(request)
            answer = request.get(ANSWER, "ok")
            return response
        except Invalid as exc:
            body = ApiError(error=exc.error, message=exc.message).model_dump()
            return json_response(body, status=exc.status, headers=exc.headers)
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
            return json_response(
                ApiError(error=code, message=message).model_dump(), status=exc.status, headers=headers
            )
        except Exception:
            log.exception("the API failed on %s %s", request.method, request.path_qs)
            failed = ApiError(error="internal", message="streamrec failed to answer; the error is logged")
            return json_response(failed.model_dump(), status=500)
        finally:
            metrics.api_seconds.labels(route, answer).observe(time.perf_counter() - started)

    return middleware


def bearer_middleware(token: str) -> Any:
    """Every request but `OPEN_PATHS` must carry ``Authorization: Bearer <token>``; else 401."""
    expected = token.encode("utf-8")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), expected):
                said = "a wrong token" if scheme.lower() == "bearer" else "no bearer token"
                raise Invalid(
                    401,
                    "unauthorized",
                    f"this API asks for its token (Authorization: Bearer <token>); the request "
                    f"carried {said}",
                    headers={"WWW-Authenticate": 'Bearer realm="streamrec"'},
                )
        return await handler(request)

    return middleware
