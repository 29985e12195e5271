"""Impressions through the session worker: a list shown and passed over is answered at once by
another, and the impression is learned without a dead letter. A control user who took the same
item and is answered by the same list sends no impressions, only that take again: their list stays."""

from __future__ import annotations

import pytest

from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import WorkerProcess
from tests.conftest import wait_for
from tests.streams.test_pipeline import NOW, _catalog, _delivered_offset, _latest

pytestmark = pytest.mark.broker

#: Many items alike, as in a real catalog: more than a list holds are about as relevant.
TITLES = {f"lamp{n}": f"Brass desk lamp, model {n}, warm light" for n in range(24)}


def test_a_list_passed_over_gives_way(
    worker: WorkerProcess,
    producer: Replayer,
    topics: Topics,
    recommendations: Collector,
    vectors: Collector,
    deadletters: Collector,
    ns: str,
) -> None:
    _catalog(vectors, producer, topics, ns, TITLES)
    user, control = f"{ns}-browser", f"{ns}-control"

    def take(who: str, ts: float) -> list[str]:
        producer.send(
            topics.clicks, {"user_id": who, "item_id": f"{ns}-lamp0", "event": "click", "ts": ts}, key=who
        )
        at = _delivered_offset(producer, topics.clicks, who)
        answer = wait_for(lambda: _latest(recommendations, who, at, topics.clicks), 90, what=f"{who}'s list")
        return [i["item_id"] for i in answer["items"]]

    shown = take(user, NOW)
    assert len(shown) == 10
    controls = [take(control, NOW)]
    assert controls[0] == shown  # the same take, the same list

    # The shop shows each new list and the user takes nothing, three times over.
    lists = [shown]
    for n in range(3):
        impression = {
            "user_id": user,
            "event": "impression",
            "items": lists[-1],
            "list_id": str(n),
            "ts": NOW + n,
        }
        producer.send(topics.clicks, impression, key=user)
        seen_at = _delivered_offset(producer, topics.clicks, user)
        answer = wait_for(
            lambda: _latest(recommendations, user, seen_at, topics.clicks),  # noqa: B023 - waited on at once
            90,
            what=f"the list after impression {n + 1}",
        )
        lists.append([i["item_id"] for i in answer["items"]])
        controls.append(take(control, NOW + n + 1))
    overlaps = [len(set(later) & set(shown)) for later in lists[1:]]
    assert all(len(later) == 10 for later in lists)
    # Without impressions the list stays as it was (10 of 10): the control's, answered as often.
    kept = [len(set(a) & set(b)) for a, b in zip(controls, controls[1:], strict=False)]
    assert kept == [10, 10, 10], (kept, controls)
    # With them, each list after an impression differs from the one shown.
    consecutive = [len(set(a) & set(b)) for a, b in zip(lists, lists[1:], strict=False)]
    assert max(consecutive) < 10, (overlaps, consecutive)
    # Offsets count per partition: the impression is named by its partition as well.
    partition = next(d.partition for d in producer.delivered if d.topic == topics.clicks and d.key == user)
    dead = {
        (m["partition"], m["offset"]) for _, m in deadletters.messages if m["source_topic"] == topics.clicks
    }
    assert (partition, seen_at) not in dead
