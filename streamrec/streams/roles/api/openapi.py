"""The HTTP API's OpenAPI 3.1 document, built from the models it answers with, and its page for people."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from streamrec.model.events.schemas import ReadableProfile, Recommendation
from streamrec.streams.roles.api.answers import ApiError, Health, SimilarItems
from streamrec.streams.roles.api.middleware import OPEN_PATHS
from streamrec.streams.roles.api.params import path_parameter, queries

__all__ = ["longest_request_line", "openapi", "render_docs"]

#: Most bytes a character takes in a URL: four UTF-8 bytes, each percent-encoded (%F0%9F%8E%BB).
_URL_BYTES_PER_CHAR = 12


def openapi(default_k: int = 10, secured: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API: its schemas taken from the models it answers with, its
    query parameters from the models that read them (`streamrec.streams.roles.api.params`)."""
    models: list[type[BaseModel]] = [Recommendation, ReadableProfile, SimilarItems, Health, ApiError]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    query = queries(default_k)
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
                        path_parameter("user_id", "the user, as in the events"),
                        *query.recommendations.parameters(),
                    ],
                    "responses": {"200": {"description": "the list", **ref("Recommendation")}, "400": bad},
                }
            },
            "/v1/users/{user_id}/profile": {
                "get": {
                    "summary": "What streamrec knows of a user, in words",
                    "parameters": [path_parameter("user_id", "the user"), *query.profile.parameters()],
                    "responses": {
                        "200": {"description": "the readable profile", **ref("ReadableProfile")},
                        "400": bad,
                        "404": {"description": "no event of the user was seen", **ref("ApiError")},
                    },
                }
            },
            "/v1/items/{item_id}/similar": {
                "get": {
                    "summary": "Items like one item",
                    "parameters": [path_parameter("item_id", "the item"), *query.similar.parameters()],
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


def longest_request_line(document: Mapping[str, Any]) -> int:
    """The most bytes a request the document allows takes on its request line (``GET <url> HTTP/1.1``):
    the server must read lines that long, or refuse a request the document allows, and not in JSON."""
    longest = 0
    for path, operations in document["paths"].items():
        for operation in operations.values():
            chars = sum(len(p["name"]) + 2 + _longest(p["schema"]) for p in operation.get("parameters", ()))
            longest = max(longest, len(path) + chars * _URL_BYTES_PER_CHAR)
    return longest + 1024  # the method, the version, and room for what a client adds


def _longest(schema: Mapping[str, Any]) -> int:
    """The most characters a value of `schema` takes, written as in a URL (a,b,c for arrays)."""
    if schema.get("type") == "array":
        return int(schema["maxItems"]) * (_longest(schema["items"]) + 1)
    if schema.get("type") == "integer":
        return 20  # any 64-bit integer
    return int(schema["maxLength"])


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
                    if "maxLength" in schema:
                        kind += f", at most {schema['maxLength']} characters"
                    if kind == "array":
                        count = f"{schema['minItems']}-{schema['maxItems']}"
                        kind = f"{count} names, a,b,c, each at most {schema['items']['maxLength']} characters"
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
