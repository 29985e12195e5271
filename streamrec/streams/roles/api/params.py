"""The HTTP API's parameters: one pydantic model per path's query, which reads a request's query and
whose JSON schema is the path's OpenAPI `parameters`, and one type for the ids in paths, so that the
document and the checks cannot disagree. A request refused is answered 400, saying what was
expected and what was seen.

>>> query = queries(10).recommendations
>>> query.check({"k": "5", "tags": "strings, reeds"}).tags
['strings', 'reeds']
>>> [p["name"] for p in query.parameters()]
['k', 'tags', 'exclude']
>>> query.check({"k": "0"})
Traceback (most recent call last):
...
streamrec.streams.roles.api.params.Invalid: k must be an integer from 1 to 100, got 0
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
)
from typing_extensions import Self

from streamrec.model.events.schemas import MAX_ID_CHARS

__all__ = [
    "MAX_K",
    "MAX_NAMES",
    "NAME_PATTERN",
    "WHITESPACE",
    "Invalid",
    "ListQuery",
    "NoQuery",
    "PathId",
    "Queries",
    "Query",
    "SimilarQuery",
    "path_id",
    "path_parameter",
    "queries",
]

#: Most items one request may ask for.
MAX_K = 100
#: Most names one comma-separated parameter may give: a list holds at most `MAX_K`, and the
#: server must read the longest request line the document allows (about 1.2 MB at 200 names).
MAX_NAMES = 200

#: What `str.strip` takes for whitespace, spelled so that Python's `re`, the Rust engine pydantic
#: checks patterns with, and the ECMA-262 regexes a JSON Schema reader uses all read the same set.
WHITESPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: One of comma-separated names, as given: no comma, and more than whitespace (trimmed off its ends).
NAME_PATTERN = rf"^[^,]*[^,{WHITESPACE}][^,]*$"


class Invalid(Exception):
    """A request refused: its status, stable error code and message (answered as an `ApiError`)."""

    def __init__(
        self, status: int, error: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers


def _whole(value: object) -> object:
    """An integer as a URL writes one: digits, maybe signed ("5.0" or "٥" is not one)."""
    if isinstance(value, str) and not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ValueError("not an integer")
    return value


def _split(value: object) -> object:
    return value.split(",") if isinstance(value, str) else value


#: A tag or an item id; no longer than the events' ids (tags are shorter still).
Name = Annotated[
    str, StringConstraints(max_length=MAX_ID_CHARS, pattern=NAME_PATTERN), AfterValidator(str.strip)
]
#: Names given comma-separated in one parameter (`style: form, explode: false` in OpenAPI's words).
Names = Annotated[list[Name], BeforeValidator(_split), Field(min_length=1, max_length=MAX_NAMES)]
#: How many items.
K = Annotated[int, Field(ge=1, le=MAX_K, description="how many items"), BeforeValidator(_whole)]


#: A user or an item id in a path, no longer than the events allow ids to be.
PathId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
_PATH_ID: TypeAdapter[str] = TypeAdapter(PathId)


def path_id(request: web.Request, name: str) -> str:
    """The id `name` of the request's path, checked."""
    value = request.match_info[name]
    try:
        return _PATH_ID.validate_python(value)
    except ValidationError:
        expected = _expected(_PATH_ID.json_schema())
        seen = f"{len(value)}: {value[:40]!r}..."
        raise Invalid(400, "invalid_parameter", f"{name} must be {expected}, got {seen}") from None


def path_parameter(name: str, what: str) -> dict[str, Any]:
    """The OpenAPI description of the id `name` in a path."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": _PATH_ID.json_schema(),
        "description": what,
    }


class Query(BaseModel):
    """A path's query parameters, each a field described for the document; any other is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def read(cls, request: web.Request) -> Self:
        """The request's query, checked (a parameter given twice: its first value, as aiohttp reads it)."""
        return cls.check({name: request.query.getone(name) for name in request.query})

    @classmethod
    def check(cls, given: Mapping[str, str]) -> Self:
        """`given` (name -> value, as in a URL) read; else `Invalid`: an unknown parameter first, else
        the first one out of its bounds, with what was expected and what was seen."""
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        properties = cls.model_json_schema()["properties"]
        unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
        if unknown:
            takes = ", ".join(f"{name} ({_expected(p)})" for name, p in properties.items())
            expected = f"expected {takes}" if takes else "this path takes none"
            raise Invalid(400, "invalid_parameter", f"unknown parameter {unknown[0]!r}: {expected}")
        name = str(errors[0]["loc"][0])
        raw, schema = given[name], properties[name]
        seen: object = raw[:80]
        if schema.get("type") == "integer" and raw.isascii():
            # A number out of range reads as one: "got 0", not "got '0'".
            with contextlib.suppress(ValueError):
                seen = int(raw)
        raise Invalid(400, "invalid_parameter", f"{name} must be {_expected(schema)}, got {seen!r}")

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """The OpenAPI 3.1 `parameters` (in: query) of the model's fields, from its JSON schema."""
        schema = cls.model_json_schema()
        required = set(schema.get("required", ()))
        described = []
        for name, field in schema["properties"].items():
            field = {key: value for key, value in field.items() if key != "title"}
            parameter = {"name": name, "in": "query", "required": name in required}
            if "description" in field:
                parameter["description"] = field.pop("description")
            if field.get("type") == "array":
                parameter |= {"style": "form", "explode": False}  # a,b,c: comma-separated
            described.append({**parameter, "schema": field})
        return described

    @classmethod
    def with_defaults(cls, **defaults: Any) -> type[Self]:
        """The model, under the same name, with other defaults (the deployment's list length)."""
        fields: dict[str, Any] = {}
        for name, default in defaults.items():
            field = copy.copy(cls.model_fields[name])
            field.default = default
            fields[name] = (field.annotation, field)
        made = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **fields)
        made.__doc__ = cls.__doc__
        return made


def _expected(schema: Mapping[str, Any]) -> str:
    """What a parameter must be, in words, from its JSON schema."""
    if schema.get("type") == "integer":
        return f"an integer from {schema['minimum']} to {schema['maximum']}"
    if schema.get("type") == "array":
        longest = schema["items"]["maxLength"]
        return (
            f"{schema['minItems']} to {schema['maxItems']} comma-separated, non-empty names "
            f"of at most {longest} characters"
        )
    if schema.get("type") == "string":
        return f"{schema['minLength']} to {schema['maxLength']} characters"
    return str(schema.get("description", "as documented"))


class ListQuery(Query):
    """A user's list: how long, and which items may be on it."""

    k: K = 10
    tags: Names = Field(
        default_factory=list, description="comma-separated tags, any of which an item must have"
    )
    exclude: Names = Field(default_factory=list, description="comma-separated item ids to leave out")


class SimilarQuery(Query):
    """Items like an item: how many."""

    k: K = 10


class NoQuery(Query):
    """A path that takes no query parameter."""


@dataclass(frozen=True)
class Queries:
    """Each path's query model, with the deployment's defaults."""

    recommendations: type[ListQuery]
    similar: type[SimilarQuery]
    profile: type[NoQuery]


@functools.cache
def queries(default_k: int) -> Queries:
    """The query models of a deployment whose lists hold `default_k` items (the same for the
    handlers and the document: one set per `default_k`)."""
    return Queries(
        recommendations=ListQuery.with_defaults(k=default_k),
        similar=SimilarQuery.with_defaults(k=default_k),
        profile=NoQuery,
    )
