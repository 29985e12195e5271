"""Impressions: what a user was shown and passed over sinks on their lists, and is a weak CF negative."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.model.cf import OnlineCF
from streamrec.model.errors import InvalidEvent
from streamrec.model.learner import Learner
from streamrec.model.recommender import Recommender
from streamrec.model.schemas import Click, EventParser, Impression, Trigger
from streamrec.model.serving import Serving


def test_an_impression_is_a_message_of_clicks_with_its_items() -> None:
    parser = EventParser()
    shown = parser.click(
        b'{"user_id": 7, "event": "impression", "items": ["a", 2], "list_id": "L1", "ts": 5}'
    )
    assert isinstance(shown, Impression)
    assert (shown.user_id, shown.items, shown.list_id) == ("7", ["a", "2"], "L1")
    assert isinstance(parser.click(b'{"user_id": 7, "item_id": "a", "event": "click", "ts": 5}'), Click)
    with pytest.raises(InvalidEvent) as caught:
        parser.click(b'{"user_id": 7, "event": "impression", "items": [], "ts": 5}')
    assert caught.value.reason == "invalid_fields" and "items" in str(caught.value)


def _catalog() -> tuple[Recommender, Serving]:
    rec = Recommender(text_dim=2, cf_dim=3)
    rng = np.random.default_rng(0)
    for n in range(30):
        rec.on_item(f"i{n}", f"Item {n}", rng.normal(size=2).astype(np.float32), ts=0)
    serving = Serving(rec)
    at = Trigger(topic="clicks", partition=0, offset=0, ts=1.0)
    serving.click(Click(user_id="ann", item_id="i0", event="click", ts=1.0), at)
    return rec, serving


def test_items_passed_over_sink_and_a_take_clears_them() -> None:
    rec, serving = _catalog()
    first = [s.item_id for s in serving.answer(["ann"], k=10)[0]]
    shown = Impression(user_id="ann", event="impression", items=first, ts=2.0)
    at = Trigger(topic="clicks", partition=0, offset=1, ts=2.0)
    assert serving.impression(shown, at)
    assert not serving.impression(shown, at.model_copy(update={"offset": 2}))  # a producer's retry
    second = [s.item_id for s in serving.answer(["ann"], k=10)[0]]
    assert len(set(first) & set(second)) < len(first)
    assert rec.profile("ann").shown == dict.fromkeys(first, 1)
    taken = first[0]
    serving.click(
        Click(user_id="ann", item_id=taken, event="click", ts=3.0), at.model_copy(update={"offset": 3})
    )
    assert taken not in rec.profile("ann").shown


def test_the_cf_learner_takes_an_impression_as_one_weak_negative() -> None:
    model = OnlineCF(n_factors=4, seed=0)
    learner = Learner(model)
    learner.catalog.update({"a", "b", "c"})
    for item in ("a", "b"):
        learner.learn(Click(user_id="ann", item_id=item, event="click", ts=1.0))
    model.drain_changed()
    shown = Impression(user_id="ann", event="impression", items=["c", "unknown"], ts=2.0)
    before = model.predict_one("ann", "c")
    assert learner.learn(shown)
    users, items = model.drain_changed()
    assert list(users) == ["ann"] and list(items) == ["c"]  # the item outside the catalog is passed over
    assert not learner.learn(shown)  # a repeat
    assert model.predict_one("ann", "c") < before
