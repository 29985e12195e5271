"""A flood of bad input mixed with valid events: every bad message is dead-lettered with its
reason, every valid event is learned, and no worker restarts."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streamrec.model.events.schemas import parse_ts
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from tests.conftest import wait_for
from tests.streams.test_pipeline import _catalog

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N_MESSAGES = 10_000
NOW = time.time()

ids = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=12)
events = st.sampled_from(["view", "click", "cart", "purchase"])


_sequence = itertools.count()


class _Drawer:
    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw


@dataclass
class Message:
    topic: str
    value: bytes
    key: bytes | None
    #: The reasons it may be rejected with, or () if it is valid.
    reasons: tuple[str, ...]
    identity: tuple | None = None  # (user, item, event, ts) of a valid click


@st.composite
def message(draw: st.DrawFn, topics: Topics, ns: str, items: list[str]) -> Message:
    data = _Drawer(draw)
    kind = data.draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "valid",
                "valid",
                "duplicate",
                "big_key",
                "out_of_order",
                "malformed",
                "not_object",
                "invalid_utf8",
                "wrong_type",
                "missing",
                "extra",
                "future",
                "unknown_item",
                "empty_text",
                "huge_text",
                "bad_rating",
            ]
        )
    )
    user = f"{ns}-u{data.draw(st.integers(0, 2**31))}"
    item = data.draw(st.sampled_from(items))
    # Hypothesis favours simple values (many zeros); a sequence number keeps drawn events distinct,
    # so that repeats are only the ones added on purpose.
    ts = NOW - data.draw(st.floats(min_value=0, max_value=1e8, allow_nan=False)) - next(_sequence)
    click = {"user_id": user, "item_id": item, "event": data.draw(events), "ts": ts}
    review = {
        "user_id": user,
        "item_id": item,
        "text": data.draw(st.text(min_size=1, max_size=80).filter(str.strip)),
        "rating": data.draw(st.integers(1, 5)),
        "ts": ts,
    }

    def valid_click(key: bytes | None = None) -> Message:
        return Message(
            topics.clicks,
            orjson.dumps(click),
            key or user.encode(),
            (),
            (click["user_id"], click["item_id"], click["event"], parse_ts(click["ts"])),
        )

    if kind in ("valid", "duplicate"):
        return valid_click()
    if kind == "big_key":
        return valid_click(key=b"k" * data.draw(st.integers(2_000, 20_000)))
    if kind == "out_of_order":
        click["ts"] = data.draw(st.sampled_from([0, 1_000_000, "1999-12-31T23:59:59Z"]))
        return Message(
            topics.clicks,
            orjson.dumps(click),
            user.encode(),
            (),
            (click["user_id"], click["item_id"], click["event"], parse_ts(click["ts"])),
        )
    if kind == "malformed":
        raw = orjson.dumps(click)
        cut = data.draw(st.integers(1, len(raw) - 1))
        return Message(
            topics.clicks,
            raw[:cut] + data.draw(st.sampled_from([b"", b"}}", b",", b"\\x"])),
            None,
            ("invalid_json",),
        )
    if kind == "not_object":
        value = data.draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers()))
        return Message(topics.clicks, json.dumps(value).encode(), None, ("not_an_object",))
    if kind == "invalid_utf8":
        raw = orjson.dumps(click).replace(b'"user_id":"', b'"user_id":"\xff\xfe', 1)
        return Message(topics.clicks, raw, None, ("invalid_utf8",))
    if kind == "wrong_type":
        field = data.draw(st.sampled_from(["user_id", "item_id", "event", "ts"]))
        click[field] = data.draw(
            st.sampled_from(
                {
                    "user_id": [[1], {"a": 1}, True, None, 1.5, ""],
                    "item_id": [[1], {"a": 1}, False, None, 2.5, "  "],
                    "event": [7, "teleport", None, ["click"]],
                    "ts": ["not-a-time", None, [1], True, -5],
                }[field]
            )
        )
        return Message(topics.clicks, orjson.dumps(click), None, ("invalid_fields",))
    if kind == "missing":
        del click[data.draw(st.sampled_from(["user_id", "item_id", "event", "ts"]))]
        return Message(topics.clicks, orjson.dumps(click), None, ("invalid_fields",))
    if kind == "extra":
        click[data.draw(st.sampled_from(["price", "userId", "x"]))] = 1
        return Message(topics.clicks, orjson.dumps(click), None, ("invalid_fields",))
    if kind == "future":
        click["ts"] = NOW + 10 * 86_400 + data.draw(st.integers(0, 10**6))
        return Message(topics.clicks, orjson.dumps(click), None, ("ts_in_future",))
    if kind == "unknown_item":
        click["item_id"] = f"{ns}-nowhere-{data.draw(ids)}"
        return Message(topics.clicks, orjson.dumps(click), None, ("unknown_item",))
    if kind == "empty_text":
        review["text"] = data.draw(st.sampled_from(["", " ", "\n\t "]))
        return Message(topics.reviews, orjson.dumps(review), None, ("empty_text",))
    if kind == "huge_text":
        review["text"] = "loud " * data.draw(st.integers(4_001, 60_000))
        return Message(topics.reviews, orjson.dumps(review), None, ("text_too_long",))
    review["rating"] = data.draw(st.sampled_from([0, 6, -1, 99, "five"]))
    return Message(topics.reviews, orjson.dumps(review), None, ("invalid_fields",))


BATCH = 50


def test_a_flood_of_bad_input_is_dead_lettered_and_nothing_valid_is_lost(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    vectors: Collector,
    deadletters: Collector,
    session_settings: Settings,
) -> None:
    producer_config = kafka_config(session_settings)
    ns = f"flood{int(time.time())}"
    items = {f"it{n}": f"Flood test item {n}: strings, picks and straps" for n in range(20)}
    _catalog(vectors, producer, topics, ns, items)
    item_ids = [f"{ns}-{i}" for i in items]
    messages: list[Message] = []

    # Hypothesis draws the flood in batches (one example is one batch of messages).
    @settings(
        max_examples=N_MESSAGES // BATCH,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(st.lists(message(topics, ns, item_ids), min_size=BATCH, max_size=BATCH))
    def draw_batch(batch: list[Message]) -> None:
        messages.extend(batch)

    draw_batch()
    assert len(messages) >= N_MESSAGES
    # Duplicates are exact repeats of an earlier valid click.
    valid = [m for m in messages if m.identity is not None]
    for n, m in enumerate(list(messages)):
        if m.identity is None and n % 97 == 0 and valid:
            messages.append(valid[n % len(valid)])
    pid = worker.process.pid
    learned_before = sum(worker.metric("streamrec_cf_events_learned_total").values())
    flood = Replayer(producer_config, keep_values=True)
    for m in messages:
        flood.send(m.topic, m.value, m.key.decode("latin-1") if m.key else None)
    flood.flush(timeout=120)
    assert len(flood.delivered) == len(messages)
    # Where each message landed: its (topic, partition, offset), found by its bytes.
    landed: dict[tuple[str, bytes], list[tuple[str, int, int]]] = {}
    for d in flood.delivered:
        landed.setdefault((d.topic, d.value or b""), []).append((d.topic, d.partition, d.offset))
    expected: dict[tuple[str, int, int], tuple[str, ...]] = {}
    for m in messages:
        if m.reasons:
            for place in landed[(m.topic, m.value)]:
                expected[place] = m.reasons
    unique_valid = {m.identity for m in messages if m.identity is not None}

    def letters() -> dict[tuple[str, int, int], str]:
        return {
            (d["source_topic"], d["partition"], d["offset"]): d["reason"] for _, d in deadletters.messages
        }

    try:
        wait_for(
            lambda: set(expected) <= set(letters()),
            180,
            interval=1.0,
            what="every bad message in the dead-letter topic",
        )
    except AssertionError:
        from collections import Counter

        missing = Counter(expected[p] for p in set(expected) - set(letters()))
        raise AssertionError(
            f"{sum(missing.values())} of {len(expected)} bad messages not dead-lettered: "
            f"{missing.most_common()}; worker alive: {worker.process.poll() is None}"
        ) from None
    got = letters()
    wrong = {place: (reasons, got[place]) for place, reasons in expected.items() if got[place] not in reasons}
    assert not wrong, list(wrong.items())[:5]
    assert not set(got) & {p for m in messages if not m.reasons for p in landed[(m.topic, m.value)]}, (
        "a valid message was dead-lettered"
    )
    wait_for(
        lambda: (
            sum(worker.metric("streamrec_cf_events_learned_total").values()) - learned_before
            >= len(unique_valid)
        ),
        120,
        what="every valid click to be learned",
    )
    learned = sum(worker.metric("streamrec_cf_events_learned_total").values()) - learned_before
    assert learned == len(unique_valid), "each distinct valid click learned once, repeats ignored"
    assert worker.process.poll() is None and worker.process.pid == pid, "no worker restarted"
    bad = len([m for m in messages if m.reasons])
    print(
        f"\nflood: {len(messages)} messages, {bad} bad (all dead-lettered with their reason), "
        f"{len(unique_valid)} distinct valid clicks learned, "
        f"{len(messages) - bad - len(unique_valid)} repeats"
    )
