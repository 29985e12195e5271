"""The pipeline end to end: events produced with confluent-kafka, recommendations read back.

One worker (all roles) runs for the session against the embedded broker, with Qdrant
in local mode and the real MiniLM encoder.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from streamrec.model.events.schemas import Recommendation
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess
from tests.conftest import wait_for

pytestmark = pytest.mark.broker

NOW = time.time()


def _latest(
    collector: Collector, user: str, after_offset: int = -1, topic: str | None = None
) -> dict[str, Any] | None:
    found = None
    for _, msg in collector.messages:
        trigger = msg["trigger"]
        if (
            msg["user_id"] == user
            and trigger["offset"] >= after_offset
            and (topic is None or trigger["topic"] == topic)
        ):
            found = msg
    return found


def _catalog(vectors: Collector, producer: Replayer, topics: Topics, ns: str, items: dict[str, str]) -> None:
    """Publish catalog entries and wait until the encoder has published their vectors."""
    ids = {f"{ns}-{item_id}" for item_id in items}
    for item_id, title in items.items():
        producer.send(
            topics.items, {"item_id": f"{ns}-{item_id}", "title": title, "ts": NOW}, key=f"{ns}-{item_id}"
        )
    producer.flush()
    wait_for(
        lambda: ids <= {m["id"] for _, m in vectors.messages if m["kind"] == "item" and m["name"] == "text"},
        90,
        what="the catalog's text vectors",
    )


def _delivered_offset(producer: Replayer, topic: str, key: str) -> int:
    producer.flush()
    return max(d.offset for d in producer.delivered if d.topic == topic and d.key == key)


def test_click_yields_a_recommendation_that_follows_the_contract(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    ns: str,
    vectors: Collector,
) -> None:
    _catalog(
        vectors,
        producer,
        topics,
        ns,
        {
            "g1": "Acoustic guitar strings, phosphor bronze, light gauge",
            "g2": "Electric guitar strings, nickel wound",
            "d1": "Drum sticks, hickory 5A",
            "d2": "Snare drum head, coated",
        },
    )
    user = f"{ns}-u1"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-g1", "event": "click", "ts": NOW}, key=user
    )
    offset = _delivered_offset(producer, topics.clicks, user)

    msg = wait_for(lambda: _latest(recommendations, user, offset, topics.clicks), 60, what="a recommendation")
    rec = Recommendation.model_validate(msg)
    assert rec.trigger.topic == topics.clicks and rec.trigger.offset == offset
    assert 0 < len(rec.items) <= 10
    assert all(item.reasons for item in rec.items)
    assert rec.model.encoder != "none" and rec.model.cf
    ids = [item.item_id for item in rec.items]
    assert len(set(ids)) == len(ids), "an item is listed once"
    assert f"{ns}-g1" not in ids, "a clicked item must not be recommended"
    # Diversification reorders the list, but its first pick is the most relevant item.
    assert rec.items[0].score == max(item.score for item in rec.items)
    # The nearest text to the click leads, and says so (the session's other tests share the
    # catalog, so it may be another test's guitar strings); this test's drum items follow its strings.
    assert any("Acoustic guitar strings" in r and "you clicked" in r for r in rec.items[0].reasons)
    rank = {item.item_id: n for n, item in enumerate(rec.items)}
    if f"{ns}-g2" in rank:
        assert all(rank[f"{ns}-g2"] < rank[f"{ns}-{d}"] for d in ("d1", "d2") if f"{ns}-{d}" in rank)


def test_seen_items_are_excluded(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    ns: str,
    vectors: Collector,
) -> None:
    items = {f"i{n}": f"Guitar accessory number {n}: strap, capo or picks" for n in range(6)}
    _catalog(vectors, producer, topics, ns, items)
    user = f"{ns}-u2"
    seen = [f"{ns}-i0", f"{ns}-i1", f"{ns}-i2"]
    for item in seen:
        producer.send(topics.clicks, {"user_id": user, "item_id": item, "event": "view", "ts": NOW}, key=user)
    offset = _delivered_offset(producer, topics.clicks, user)
    msg = wait_for(lambda: _latest(recommendations, user, offset, topics.clicks), 60, what="a recommendation")
    recommended = {item["item_id"] for item in msg["items"]}
    assert recommended and not recommended & set(seen)


def test_new_item_with_only_text_is_recommended_to_a_new_user_from_their_first_review(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    ns: str,
    vectors: Collector,
) -> None:
    # Neither the item nor the user has ever been clicked: text is all there is.
    _catalog(
        vectors,
        producer,
        topics,
        ns,
        {
            "banjo": "Five-string bluegrass banjo with resonator, maple neck and geared tuners",
            "piano": "Digital piano, 88 weighted keys",
            "cable": "XLR microphone cable, 20 ft",
        },
    )
    user = f"{ns}-u3"
    review = {
        "user_id": user,
        "item_id": f"{ns}-cable",
        "text": "I play bluegrass banjo every weekend and needed a long cable to mic my banjo on stage.",
        "rating": 5,
        "ts": NOW,
    }
    producer.send(topics.reviews, review, key=user)
    offset = _delivered_offset(producer, topics.reviews, user)
    msg = wait_for(
        lambda: _latest(recommendations, user, offset, topics.reviews), 90, what="a recommendation"
    )
    ids = [item["item_id"] for item in msg["items"]]
    assert f"{ns}-banjo" in ids, ids
    banjo = next(item for item in msg["items"] if item["item_id"] == f"{ns}-banjo")
    assert any("similar to" in reason or "new" in reason for reason in banjo["reasons"]), banjo
    assert f"{ns}-cable" not in ids


def test_two_new_users_get_recommendations_matching_what_they_wrote(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    ns: str,
    vectors: Collector,
) -> None:
    _catalog(
        vectors,
        producer,
        topics,
        ns,
        {
            "violin-rosin": "Violin rosin, light, for bows of violin and viola",
            "violin-strings": "Violin strings set, synthetic core",
            "drum-throne": "Drum throne, padded seat for drummers",
            "drum-pedal": "Bass drum pedal, double chain",
        },
    )
    # Each reviews one item of their kind; neither item has a click, so only text relates
    # them to the other item of that kind.
    reviews = {
        f"{ns}-fiddler": ("violin-strings", "My violin sounds sweet now, these strings stay in tune."),
        f"{ns}-drummer": (
            "drum-pedal",
            "Great for my drum kit, I play drums in a rock band, the kick feels solid.",
        ),
    }
    for user, (item, text) in reviews.items():
        producer.send(
            topics.reviews, {"user_id": user, "item_id": f"{ns}-{item}", "text": text, "ts": NOW}, key=user
        )
    producer.flush()

    def ranked(user: str) -> list[str] | None:
        msg = _latest(recommendations, user, topic=topics.reviews)
        return [i["item_id"] for i in msg["items"]] if msg else None

    # Personalized: each one's first review pulls the other item of its kind into the list,
    # above the other kind. (Where it lands among everything else also depends on
    # popularity, which the whole test session shares.)
    fiddler = wait_for(lambda: ranked(f"{ns}-fiddler"), 90, what="the fiddler's recommendation")
    drummer = wait_for(lambda: ranked(f"{ns}-drummer"), 90, what="the drummer's recommendation")
    for mine, theirs, ranking in (("violin", "drum", fiddler), ("drum", "violin", drummer)):
        own = [n for n, item in enumerate(ranking) if mine in item]
        other = [n for n, item in enumerate(ranking) if theirs in item]
        assert own, ranking
        assert not other or min(own) < min(other), ranking


BAD_CLICKS: list[tuple[bytes, str]] = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe\x00", "invalid_utf8"),
    (b"[1, 2]", "not_an_object"),
    (orjson.dumps({"user_id": "u"}), "invalid_fields"),
    (orjson.dumps({"user_id": "u", "item_id": "i", "event": "teleport", "ts": 1}), "invalid_fields"),
    (orjson.dumps({"user_id": ["u"], "item_id": "i", "event": "click", "ts": 1}), "invalid_fields"),
    (orjson.dumps({"user_id": "u", "item_id": "i", "event": "click", "ts": 1, "extra": 1}), "invalid_fields"),
    (orjson.dumps({"user_id": "u", "item_id": "i", "event": "click", "ts": 4e9}), "ts_in_future"),
]


def test_bad_input_goes_to_the_dead_letter_topic_and_the_worker_keeps_going(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    deadletters: Collector,
    ns: str,
    vectors: Collector,
) -> None:
    _catalog(vectors, producer, topics, ns, {"ok": "Guitar tuner, clip-on"})
    before = len(producer.delivered)
    for raw, _ in BAD_CLICKS:
        producer.send(topics.clicks, raw, key=f"{ns}-bad")
    item = f"{ns}-ok"
    bad_reviews = [
        ({"user_id": f"{ns}-bad", "item_id": item, "text": "   ", "ts": NOW}, "empty_text"),
        ({"user_id": f"{ns}-bad", "item_id": item, "text": "x" * 990_000, "ts": NOW}, "text_too_long"),
        ({"user_id": f"{ns}-bad", "item_id": item, "text": "fine", "rating": 9, "ts": NOW}, "invalid_fields"),
        ({"user_id": f"{ns}-bad", "item_id": f"{ns}-nowhere", "text": "fine", "ts": NOW}, "unknown_item"),
    ]
    for value, _ in bad_reviews:
        producer.send(topics.reviews, value, key=f"{ns}-bad")
    user = f"{ns}-good"
    producer.send(topics.clicks, {"user_id": user, "item_id": item, "event": "click", "ts": NOW}, key=user)
    producer.flush()
    sent = [d for d in producer.delivered[before:] if d.key == f"{ns}-bad"]
    expected = {(d.topic, d.partition, d.offset) for d in sent}
    assert len(expected) == len(BAD_CLICKS) + len(bad_reviews)

    def letters() -> dict[tuple[str, int, int], dict[str, Any]]:
        return {
            (m["source_topic"], m["partition"], m["offset"]): m
            for _, m in deadletters.messages
            if (m["source_topic"], m["partition"], m["offset"]) in expected
        }

    got = wait_for(
        lambda: (lambda found: found if len(found) == len(expected) else None)(letters()),
        60,
        what="every bad message in the dead-letter topic",
    )
    reasons = sorted(m["reason"] for m in got.values())
    assert reasons == sorted([r for _, r in BAD_CLICKS] + [r for _, r in bad_reviews])
    assert all(m["error"] for m in got.values())
    # The valid event after the bad ones still gets its recommendation.
    wait_for(
        lambda: _latest(recommendations, user, topic=topics.clicks),
        60,
        what="the valid click's recommendation",
    )
    metrics = worker.metric("streamrec_deadletter_total")
    assert sum(metrics.values()) >= len(expected)


def test_metrics_endpoint_exports_the_pipeline_series(
    worker: WorkerProcess, recommendations: Collector
) -> None:
    wait_for(lambda: recommendations.messages, 60, what="any recommendation")
    received = len(recommendations.messages)
    consumed = worker.metric("streamrec_events_consumed_total")
    assert any('topic="' in k and v > 0 for k, v in consumed.items())
    # Every list a consumer has read was counted before it was sent.
    assert sum(worker.metric("streamrec_recommendations_total").values()) >= received
    assert sum(worker.metric("streamrec_event_to_recommendation_seconds_count").values()) > 0
    assert sum(worker.metric("streamrec_encoder_batch_seconds_count").values()) > 0
    # Ranking is timed apart from the candidate search within it, which is labelled by backend.
    rankings = sum(worker.metric("streamrec_ranking_seconds_count").values())
    searches = worker.metric("streamrec_candidate_search_seconds_count")
    assert rankings > 0 and searches.get('{backend="memory"}', 0) > 0
    ranking_s = sum(worker.metric("streamrec_ranking_seconds_sum").values())
    assert 0 < sum(worker.metric("streamrec_candidate_search_seconds_sum").values()) <= ranking_s
    assert all(v == 1.0 for v in worker.metric("streamrec_worker_ready").values())
