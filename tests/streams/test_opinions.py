"""Reviews read as opinions, through the running pipeline: dislikes, grounded reasons, readable profiles.

The session's worker (every role, the real MiniLM) reads each review: a 1-star review pushes its
author away from what it resembles, a review that praises value earns reasons that quote it, and
the `profiles` topic carries what the user cares about in their own words, until they are forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamrec.model.events.schemas import ReadableProfile, Recommendation
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import WorkerProcess
from tests.conftest import wait_for
from tests.streams.test_pipeline import _catalog, _delivered_offset

pytestmark = pytest.mark.broker

NOW = time.time()

HEADPHONES = {f"h{n}": f"Wireless headphones model {n}, over-ear, bluetooth" for n in range(6)}
OTHERS = {
    "g1": "Acoustic guitar strings, phosphor bronze",
    "g2": "Guitar capo, spring clamp",
    "d1": "Drum sticks, hickory 5A",
    "d2": "Snare drum head, coated",
    "k1": "Keyboard stand, adjustable X frame",
    "m1": "Condenser microphone for vocals",
}


@pytest.fixture(scope="module")
def profiles(session_settings: Settings, topics: Topics, worker: WorkerProcess) -> Iterator[Collector]:
    collector = Collector(kafka_config(session_settings), topics.profiles)
    yield collector
    collector.close()


def _list_after(recommendations: Collector, user: str, topic: str) -> Recommendation | None:
    found = [
        m for _, m in recommendations.messages if m["user_id"] == user and m["trigger"]["topic"] == topic
    ]
    return Recommendation.model_validate(found[-1]) if found else None


def _send(producer: Replayer, topic: str, value: dict[str, Any]) -> None:
    producer.send(topic, {**value, "ts": NOW}, key=value["user_id"])


def test_a_one_star_review_brings_fewer_items_like_it(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, {**HEADPHONES, **OTHERS})
    lists = {}
    for who, review in (("panned", True), ("quiet", False)):
        user = f"{ns}-{who}"
        for item in ("g1", "d1", "h0"):
            _send(producer, topics.clicks, {"user_id": user, "item_id": f"{ns}-{item}", "event": "purchase"})
        if review:
            text = "Cheap plastic, broke after a week. The sound is awful."
            _send(
                producer, topics.reviews, {"user_id": user, "item_id": f"{ns}-h0", "rating": 1, "text": text}
            )
            producer.flush()
            wait_for(
                lambda u=user: _list_after(recommendations, u, topics.reviews), 60, what="the review's list"
            )
        # The next list each user gets: the one that answers a click on something else.
        _send(producer, topics.clicks, {"user_id": user, "item_id": f"{ns}-k1", "event": "click"})
        offset = _delivered_offset(producer, topics.clicks, user)
        lists[who] = wait_for(
            lambda u=user, o=offset: (lambda r: r if r is not None and r.trigger.offset >= o else None)(
                _list_after(recommendations, u, topics.clicks)
            ),
            60,
            what=f"{who}'s list after the last click",
        )
    # The top of each list: a list holds most of this small catalog, whatever the order.
    count = {who: sum(i.item_id.startswith(f"{ns}-h") for i in rec.items[:5]) for who, rec in lists.items()}
    shown = {who: [(i.item_id, i.reasons) for i in rec.items] for who, rec in lists.items()}
    assert count["panned"] < count["quiet"], str(shown)


def test_a_user_who_praises_value_gets_reasons_quoting_it_and_a_readable_profile(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    profiles: Collector,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, {**HEADPHONES, **OTHERS})
    # Other reviewers praise the value of two headphones: their reputation on value.
    reviewers = [f"{ns}-r{n}" for n in range(4)]
    for reviewer, item in zip(reviewers, ("h1", "h2", "h1", "h2")):
        praise = "Great price for the quality, worth every penny."
        _send(
            producer,
            topics.reviews,
            {"user_id": reviewer, "item_id": f"{ns}-{item}", "rating": 5, "text": praise},
        )
    producer.flush()
    # Reviews keyed by different users travel on different partitions, in no set order: the
    # reputation holds theirs once each reviewer has had the list their review answers.
    wait_for(
        lambda: all(_list_after(recommendations, r, topics.reviews) for r in reviewers),
        60,
        what="the reviewers' lists",
    )
    user = f"{ns}-saver"
    text = "Good value for money, cheap and it works. Shipping was slow."
    _send(producer, topics.reviews, {"user_id": user, "item_id": f"{ns}-h0", "rating": 5, "text": text})
    producer.flush()

    def grounded() -> tuple[Recommendation, list[str]] | None:
        rec = _list_after(recommendations, user, topics.reviews)
        if rec is None:
            return None
        quoting = [r for item in rec.items for r in item.reasons if "value for money" in r]
        return (rec, quoting) if quoting else None

    rec, quoting = wait_for(grounded, 60, what="a reason citing value")
    assert all(len(item.reasons) <= 2 and len(set(item.reasons)) == len(item.reasons) for item in rec.items)
    quoted = quoting[0].split("“")[1].split("”")[0]
    assert quoted in text, "the user's own words, a slice of their review"

    view = wait_for(
        lambda: next(
            (ReadableProfile.model_validate(m) for _, m in profiles.messages if m.get("user_id") == user),
            None,
        ),
        30,
        what="the readable profile",
    )
    assert view.cares_about and view.cares_about[0].aspect in ("value", "service")
    assert {a.aspect for a in view.cares_about} >= {"value"}
    for aspect in view.cares_about:
        assert all(e.text in text for e in aspect.evidence)
    assert "value for money" in view.summary


def test_chinese_and_mixed_language_reviews_pass_through_with_their_own_words_as_evidence(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    vectors: Collector,
    profiles: Collector,
    ns: str,
) -> None:
    items = {"zh1": "无线蓝牙耳机", "zh2": "洗发水", "zh3": "不粘锅煎锅"}
    _catalog(vectors, producer, topics, ns, items)
    user = f"{ns}-zh"
    praised, panned = "性价比高，音质很好", "质量差，用了一周就坏了. Never again."
    _send(producer, topics.reviews, {"user_id": user, "item_id": f"{ns}-zh1", "rating": 5, "text": praised})
    _send(producer, topics.reviews, {"user_id": user, "item_id": f"{ns}-zh2", "rating": 1, "text": panned})
    producer.flush()
    view = wait_for(
        lambda: next(
            (ReadableProfile.model_validate(m) for _, m in reversed(profiles.messages)
             if m.get("user_id") == user and m["reviews"] == 2),
            None,
        ),
        60,
        what="the profile after both reviews",
    )  # fmt: skip
    aspects = {a.aspect: a for a in view.cares_about}
    # The phrases of the default aspects are matched word for word, whatever the encoder reads.
    assert "value" in aspects and "quality" in aspects
    assert aspects["value"].mentions == 1 and aspects["quality"].mentions == 2  # "质量差", "用了一周就坏了"
    # Praise or criticism is counted only as sure as the reader is; never the other way round.
    assert aspects["value"].criticized == 0 and aspects["quality"].praised == 0
    assert all(e.text in praised or e.text in panned for a in view.cares_about for e in a.evidence)
    assert [i.item_id for i in view.disliked] == [f"{ns}-zh2"]
