"""The exported JSON Schemas describe what the topics really carry."""

from __future__ import annotations

import json

import jsonschema
import pytest
from typer.testing import CliRunner

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.parser import EventParser
from streamrec.streams.commands.cli import app
from streamrec.streams.contract import PUBLIC_TOPICS, topic_schemas


def test_schema_command_prints_every_public_topic() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schemas = json.loads(result.output)
    assert set(schemas) == set(PUBLIC_TOPICS)
    # clicks: an interaction, or an impression.
    variants = [
        schemas["clicks"]["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in schemas["clicks"]["anyOf"]
    ]
    assert [set(v["required"]) for v in variants] == [
        {"user_id", "item_id", "event", "ts"},
        {"user_id", "event", "items", "ts"},
    ]
    assert set(schemas["reviews"]["required"]) == {"user_id", "item_id", "text", "ts"}
    one = CliRunner().invoke(app, ["schema", "--topic", "items"])
    assert json.loads(one.output)["x-kafka-key"] == "item_id"
    bad = CliRunner().invoke(app, ["schema", "--topic", "nope"])
    assert bad.exit_code != 0 and "must be one of" in bad.output


def _parse(topic: str, value: dict) -> dict:
    parse = getattr(EventParser(), topic.rstrip("s") if topic != "forget" else "forget")
    return parse(json.dumps(value).encode()).model_dump()


@pytest.mark.parametrize(
    ("topic", "value", "parsed"),
    [
        (
            "clicks",
            {"user_id": "u1", "item_id": 42, "event": "cart", "ts": "2024-05-01T10:00:00Z"},
            {"user_id": "u1", "item_id": "42", "event": "cart", "ts": 1714557600.0},
        ),
        (
            "reviews",
            {"user_id": 7, "item_id": "B0002E1G5C", "text": "Warm tone.", "rating": 4.5, "ts": 1.7e9},
            {"user_id": "7", "item_id": "B0002E1G5C", "text": "Warm tone.", "rating": 4.5, "ts": 1.7e9},
        ),
        (
            "items",
            {"item_id": "a", "title": "Capo", "tags": ["guitar"], "description": "Spring", "ts": 0},
            {"item_id": "a", "title": "Capo", "tags": ["guitar"], "description": "Spring", "ts": 0.0},
        ),
        (
            "clicks",
            {"user_id": "u1", "event": "impression", "items": ["a", 7], "list_id": "L", "ts": 5},
            {"user_id": "u1", "event": "impression", "items": ["a", "7"], "list_id": "L", "ts": 5.0},
        ),
        ("forget", {"user_id": "u1"}, {"user_id": "u1"}),
    ],
)
def test_what_the_parser_accepts_the_schema_accepts(topic: str, value: dict, parsed: dict) -> None:
    # The parser reads each field as the schema documents it (ids as strings, times as seconds).
    got = _parse(topic, value)
    assert {k: got[k] for k in parsed} == parsed
    jsonschema.validate(value, topic_schemas()[topic])


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        ("clicks", {"user_id": "u1", "item_id": "i", "event": "teleport", "ts": 1}),
        ("clicks", {"user_id": "u1", "item_id": "i", "event": "click"}),
        ("clicks", {"user_id": "u1", "event": "impression", "items": [], "ts": 1}),
        ("clicks", {"user_id": "u1", "event": "impression", "item_id": "i", "ts": 1}),
        ("reviews", {"user_id": "u", "item_id": "i", "text": "x", "ts": 1, "stars": 5}),
        ("items", {"item_id": "a", "ts": 0}),
    ],
)
def test_what_the_schema_rejects_the_parser_rejects(topic: str, value: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, topic_schemas()[topic])
    with pytest.raises(InvalidEvent) as rejected:
        _parse(topic, value)
    assert rejected.value.reason == "invalid_fields"
