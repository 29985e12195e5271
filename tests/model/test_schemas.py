"""The event contract: what passes, what is rejected and why, for any input."""

from __future__ import annotations

import json
import math
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.parser import EventParser, Limits
from streamrec.model.events.schemas import parse_id, parse_ts

REASONS = {
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "invalid_fields",
    "empty_text",
    "text_too_long",
    "ts_in_future",
    "invalid_vector",
}
parser = EventParser()

ids = st.one_of(
    st.integers(min_value=0, max_value=2**62),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and s.strip().isprintable()),
)
timestamps = st.one_of(
    st.integers(min_value=0, max_value=int(time.time())),
    st.floats(min_value=0, max_value=time.time(), allow_nan=False),
)


@given(user=ids, item=ids, ts=timestamps, event=st.sampled_from(["view", "click", "cart", "purchase"]))
def test_valid_clicks_parse_and_normalize_ids(user: object, item: object, ts: float, event: str) -> None:
    click = parser.click(orjson.dumps({"user_id": user, "item_id": item, "event": event, "ts": ts}))
    assert click.user_id == parse_id(user) and isinstance(click.user_id, str)
    assert click.item_id == str(item).strip() if isinstance(item, str) else click.item_id == str(item)
    assert math.isclose(click.ts, float(ts))


@settings(max_examples=300)
@given(raw=st.binary(max_size=200))
def test_any_bytes_either_parse_or_fail_with_a_known_reason(raw: bytes) -> None:
    for parse in (parser.click, parser.review, parser.item, parser.forget):
        try:
            parse(raw)
        except InvalidEvent as exc:
            assert exc.reason in REASONS and str(exc)


@settings(max_examples=300)
@given(
    value=st.dictionaries(
        st.sampled_from(["user_id", "item_id", "event", "ts", "text", "rating", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_any_json_object_either_parses_or_fails_with_a_known_reason(value: dict) -> None:
    raw = json.dumps(value).encode()  # stdlib: also writes NaN and integers beyond 64 bits
    for parse in (parser.click, parser.review):
        try:
            event = parse(raw)
        except InvalidEvent as exc:
            assert exc.reason in REASONS
        else:
            assert event.user_id and event.item_id


def test_timestamps_accept_seconds_milliseconds_and_iso() -> None:
    assert parse_ts(1404172800) == parse_ts(1404172800000) == parse_ts("2014-07-01T00:00:00Z")
    assert parse_ts("2014-07-01T02:00:00+02:00") == 1404172800.0
    assert parse_ts("2014-07-01T00:00:00") == 1404172800.0  # naive means UTC
    for bad in ("yesterday", -1, float("inf"), True, None, [1]):
        with pytest.raises(ValueError):
            parse_ts(bad)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 2_000_000, "too_large"),
        (b"\xc3\x28", "invalid_utf8"),
        (b'{"a":', "invalid_json"),
        (b'"text"', "not_an_object"),
        (b'{"user_id": "u", "item_id": "i", "text": "", "ts": 1}', "empty_text"),
        (b'{"user_id": "u", "item_id": "i", "text": "ok", "ts": 1, "rating": 0}', "invalid_fields"),
        (b'{"user_id": "u", "item_id": "i", "text": "ok", "ts": 1, "stars": 5}', "invalid_fields"),
        (b'{"user_id": "", "item_id": "i", "text": "ok", "ts": 1}', "invalid_fields"),
        (b'{"user_id": "u", "item_id": "i", "text": "ok", "ts": 99999999999}', "ts_in_future"),
    ],
)
def test_rejections_name_their_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parser.review(raw)
    assert info.value.reason == reason


def test_limits_are_configurable() -> None:
    strict = EventParser(Limits(max_text_chars=10))
    with pytest.raises(InvalidEvent) as info:
        strict.review(b'{"user_id": "u", "item_id": "i", "text": "a long review text", "ts": 1}')
    assert info.value.reason == "text_too_long"
    assert "at most 10" in str(info.value)


def test_item_text_joins_title_tags_and_description() -> None:
    item = parser.item(
        b'{"item_id": 1, "title": "Capo", "tags": ["guitar", "accessory"], "description": "Spring.", "ts": 1}'
    )
    assert item.item_id == "1"
    assert item.text() == "Capo. guitar, accessory. Spring."


@pytest.mark.parametrize(
    ("vectors", "says"),
    [
        ({"image": [1.0, 0.0, 0.5]}, None),
        ({"image": [1.0, 0.0]}, "vectors['image'] must have 3 numbers, got 2"),
        ({"audio": [1.0]}, "vectors['audio'] is not a declared modality (declared: image (3)"),
        ({"image": [0.0, 0.0, 0.0]}, "must not be all zeros"),
        ({"image": [1e39, 0.0, 0.0]}, "must hold numbers within float32's range"),
        ({"image": "1,0,0"}, "Input should be a valid list"),
        ({"image": [1.0, float("nan"), 0.0]}, "value must be JSON"),  # NaN is not JSON
    ],
)
def test_item_vectors_of_other_modalities_are_checked_against_the_declared_ones(
    vectors: dict[str, object], says: str | None
) -> None:
    parser = EventParser(modalities={"image": 3})
    raw = json.dumps({"item_id": "x", "title": "A lamp", "ts": 1.0, "vectors": vectors}).encode()
    if says is None:
        assert parser.item(raw).vectors == vectors
        return
    with pytest.raises(InvalidEvent) as info:
        parser.item(raw)
    reason = {"value must be JSON": "invalid_json", "Input should be a valid list": "invalid_fields"}
    assert info.value.reason == reason.get(says, "invalid_vector") and says in str(info.value)
