"""The API's parameters: one model per path reads the query and writes that part of the document,
so that a request is refused exactly when the document says it is wrong (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.model.events.schemas import MAX_ID_CHARS
from streamrec.streams.roles.api.http import create_api
from streamrec.streams.roles.api.openapi import longest_request_line, openapi
from streamrec.streams.roles.api.params import MAX_K, MAX_NAMES, WHITESPACE, Invalid, Query, queries
from streamrec.streams.telemetry import Metrics
from tests.streams.test_api_token import _Shop

LIST = queries(10).recommendations
NAMES = f"1 to {MAX_NAMES} comma-separated, non-empty names of at most {MAX_ID_CHARS} characters"


def _refusal(model: type[Query], given: dict[str, str]) -> str:
    with pytest.raises(Invalid) as refused:
        model.check(given)
    assert refused.value.status == 400 and refused.value.error == "invalid_parameter"
    return refused.value.message


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"k": "abc"}, f"k must be an integer from 1 to {MAX_K}, got 'abc'"),
        ({"k": "0"}, f"k must be an integer from 1 to {MAX_K}, got 0"),
        ({"k": "101"}, f"k must be an integer from 1 to {MAX_K}, got 101"),
        ({"k": ""}, f"k must be an integer from 1 to {MAX_K}, got ''"),
        ({"tags": "a,,b"}, f"tags must be {NAMES}, got 'a,,b'"),
        ({"exclude": " "}, f"exclude must be {NAMES}, got ' '"),
        ({"exclude": "x" * (MAX_ID_CHARS + 1)}, f"exclude must be {NAMES}, got 'xxxx"),
        ({"exclude": ",".join("x" * (MAX_NAMES + 1))}, f"exclude must be 1 to {MAX_NAMES} comma-separated"),
        ({"top": "3", "k": "0"}, "unknown parameter 'top': expected k (an integer from 1 to 100), tags ("),
    ],
)
def test_a_bad_query_is_told_what_was_expected_and_what_was_seen(given: dict[str, str], says: str) -> None:
    assert says in _refusal(LIST, given)


def test_a_good_query_is_read_as_before() -> None:
    asked = LIST.check({"k": "7", "tags": " strings , reeds", "exclude": "a"})
    assert (asked.k, asked.tags, asked.exclude) == (7, ["strings", "reeds"], ["a"])
    assert LIST.check({}).k == 10 and queries(3).similar.check({}).k == 3
    assert "takes none" in _refusal(queries(10).profile, {"k": "1"})


def test_the_document_describes_each_query_with_its_models_limits() -> None:
    document = openapi(default_k=7)
    operation = document["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    described = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert list(described.values()) == queries(7).recommendations.parameters()
    assert described["k"]["schema"] | {"default": 7} == described["k"]["schema"]
    for name in ("tags", "exclude"):
        schema = described[name]["schema"]
        assert (schema["minItems"], schema["maxItems"]) == (1, MAX_NAMES)
        assert schema["items"]["maxLength"] == MAX_ID_CHARS and schema["items"]["pattern"]
        assert (described[name]["style"], described[name]["explode"]) == ("form", False)
    similar = document["paths"]["/v1/items/{item_id}/similar"]["get"]["parameters"]
    assert [p["name"] for p in similar] == ["item_id", "k"]


def test_the_whitespace_of_names_is_what_str_strip_takes() -> None:
    space = re.compile(f"[{WHITESPACE}]")
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() != bool(space.fullmatch(c))] == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30))
def test_names_are_refused_exactly_when_their_plain_reading_says(raw: str) -> None:
    """A plain reading of the rule: comma-separated, none blank once stripped, none too long."""
    parts = raw.split(",")
    good = all(p.strip() and len(p) <= MAX_ID_CHARS for p in parts) and len(parts) <= MAX_NAMES
    if good:
        assert LIST.check({"tags": raw}).tags == [p.strip() for p in parts]
    else:
        _refusal(LIST, {"tags": raw})


async def _raw_get(target: str) -> tuple[int, bytes]:
    """GET `target` (a path and query, encoded) over a plain connection: clients refuse long URLs
    themselves (httpx beyond 64 KiB)."""
    runner = web.AppRunner(create_api(_Shop(), Metrics.create()))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(f"GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
    finally:
        await runner.cleanup()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_longest_url_the_document_allows_is_answered_in_json() -> None:
    """aiohttp refuses request lines over 8 KiB, in plain text, before the API sees them: the API
    reads lines as long as the longest its document allows."""
    names = ",".join(["\U0001f3bb" * MAX_ID_CHARS] * MAX_NAMES)  # 12 bytes a character, encoded
    path = f"/v1/users/{'u' * MAX_ID_CHARS}/recommendations?k={MAX_K}&tags={names}&exclude={names}"
    target = quote(path, safe="/?=&,")
    assert 1_000_000 < len(target) <= longest_request_line(openapi())
    status, body = asyncio.run(_raw_get(target))
    assert status == 200 and json.loads(body)["user_id"] == "u" * MAX_ID_CHARS
    status, body = asyncio.run(_raw_get(f"/v1/users/{'u' * (MAX_ID_CHARS + 1)}/profile"))
    assert status == 400 and "user_id must be 1 to 256 characters" in json.loads(body)["message"]
