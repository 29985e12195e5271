"""The HTTP API's query parameters: what each path takes, read and checked, or refused with why."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["LIST_PARAMS", "MAX_K", "Invalid", "k_param", "names_param", "query_params"]

#: Most items one request may ask for.
MAX_K = 100

#: The parameters of a user's list, and what each is.
LIST_PARAMS = {
    "k": f"items, 1-{MAX_K}",
    "tags": "comma-separated tags, any of which an item must have",
    "exclude": "comma-separated item ids to leave out",
}


class Invalid(Exception):
    """A request refused: its status, stable error code and message (answered as an `ApiError`)."""

    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers


def query_params(request: web.Request, allowed: Mapping[str, str]) -> dict[str, str]:
    """The request's query parameters, all of them among `allowed` (name -> what it is)."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        expected = ", ".join(f"{name} ({what})" for name, what in allowed.items())
        raise Invalid(400, "invalid_parameter", f"unknown parameter {unknown[0]!r}: expected {expected}")
    return {name: request.query[name] for name in allowed if name in request.query}


def k_param(given: Mapping[str, str], default: int) -> int:
    """How many items were asked for: 1 to `MAX_K`, `default` when not given."""
    raw = given.get("k")
    if raw is None:
        return default
    try:
        k = int(raw)
    except ValueError:
        raise Invalid(
            400, "invalid_parameter", f"k must be an integer from 1 to {MAX_K}, got {raw!r}"
        ) from None
    if not 1 <= k <= MAX_K:
        raise Invalid(400, "invalid_parameter", f"k must be an integer from 1 to {MAX_K}, got {k}")
    return k


def names_param(given: Mapping[str, str], name: str) -> list[str]:
    """The comma-separated names of parameter `name` (none when not given)."""
    raw = given.get(name)
    if raw is None:
        return []
    names = [n.strip() for n in raw.split(",")]
    if not all(names) or len(names) > 1000:
        raise Invalid(
            400,
            "invalid_parameter",
            f"{name} must be 1 to 1000 comma-separated, non-empty names, got {raw[:80]!r}",
        )
    return names
