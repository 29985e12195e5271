"""Impressions through the session worker: a list shown and passed over is answered at once by a
list without most of it, and CF learns the impression without a dead letter."""

from __future__ import annotations

import pytest

from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess
from streamrec.streams.topics import Topics
from tests.conftest import wait_for
from tests.streams.test_pipeline import NOW, _catalog, _delivered_offset, _latest

pytestmark = pytest.mark.broker

TITLES = {f"lamp{n}": f"Brass desk lamp, model {n}, warm light" for n in range(12)} | {
    f"shade{n}": f"Linen lamp shade, {n} inch, ivory" for n in range(12)
}


def test_a_list_passed_over_gives_way_to_another(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    deadletters: Collector,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, TITLES)
    user = f"{ns}-browser"
    producer.send(
        topics.clicks, {"user_id": user, "item_id": f"{ns}-lamp0", "event": "click", "ts": NOW}, key=user
    )
    clicked = _delivered_offset(producer, topics.clicks, user)
    first = wait_for(
        lambda: _latest(recommendations, user, clicked, topics.clicks), 90, what="the first list"
    )
    shown = [i["item_id"] for i in first["items"]]
    assert len(shown) == 10

    impression = {"user_id": user, "event": "impression", "items": shown, "list_id": "first", "ts": NOW + 1}
    producer.send(topics.clicks, impression, key=user)
    seen_at = _delivered_offset(producer, topics.clicks, user)
    second = wait_for(
        lambda: _latest(recommendations, user, seen_at, topics.clicks),
        90,
        what="the list after the impression",
    )
    again = [i["item_id"] for i in second["items"]]
    assert len(again) == 10 and len(set(again) & set(shown)) <= 7, (shown, again)
    assert not any(
        m["offset"] == seen_at and m["source_topic"] == topics.clicks for _, m in deadletters.messages
    )
