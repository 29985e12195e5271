"""Impressions: what a user was shown and passed over sinks on their lists, and is a weak CF negative."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.errors import InvalidEvent
from streamrec.model.events.parser import EventParser
from streamrec.model.events.schemas import Click, Impression, Trigger
from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.ranking.ranker import HybridRanker, Request
from streamrec.model.serving.recommender import Recommender
from streamrec.model.serving.service import Serving
from streamrec.model.users import exposure
from streamrec.model.users.profile import UserProfile


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
    # Each time it is passed over, an item sinks further.
    again = shown.model_copy(update={"ts": 3.0})
    assert serving.impression(again, at.model_copy(update={"offset": 3}))
    thrice = shown.model_copy(update={"ts": 4.0})
    assert serving.impression(thrice, at.model_copy(update={"offset": 4}))
    second = [s.item_id for s in serving.answer(["ann"], k=10)[0]]
    assert len(set(first) & set(second)) < len(first)
    assert rec.profile("ann").shown == dict.fromkeys(first, 3)
    taken = first[0]
    serving.click(
        Click(user_id="ann", item_id=taken, event="click", ts=5.0), at.model_copy(update={"offset": 5})
    )
    assert taken not in rec.profile("ann").shown


def test_how_far_an_item_sinks_levels_off_and_follows_the_users_habit() -> None:
    def sink(from_list: int, takes: int, times: int, habits: exposure.Habits | None = None) -> float:
        profile = UserProfile("ann", list_takes=[float(from_list), float(takes)])
        profile.shown = {"a": times}
        ranker = HybridRanker(MemoryIndex({"text": (2, "cosine"), "cf": (2, "dot")}), Popularity())
        ranker.habits = habits or exposure.Habits()
        relevance = ranker._blend(Request(profile=profile), ["a", "b", "c"]).relevance
        profile.shown = {}
        return float((ranker._blend(Request(profile=profile), ["a", "b", "c"]).relevance - relevance)[0])

    steps = [sink(9, 10, n) for n in (1, 2, 5, 50)]
    assert 0 < steps[0] < steps[1] < steps[2] and steps[3] == pytest.approx(steps[2], rel=0.1)
    # A user who takes from what they are shown says more by passing over than one who never does.
    assert sink(0, 50, 50) < 0.2 * sink(50, 50, 50)
    # A new user is taken to do as all users do: where lists are rarely taken from, passing over
    # one says little.
    ignored, followed = exposure.Habits(), exposure.Habits()
    for n in range(1000):
        ignored.took(from_list=n % 20 == 0)
        followed.took(from_list=n % 2 == 0)
    assert sink(0, 0, 3, ignored) < 0.5 * sink(0, 0, 3, followed)
    assert [profile_attention(f, t) for f, t in ((0, 0), (0, 50), (50, 50))] == pytest.approx(
        [0.25, 1 / 54, 51 / 54]
    )


def profile_attention(from_list: int, takes: int) -> float:
    profile = UserProfile("ann")
    for n in range(takes):
        profile.show([f"i{n}" if n < from_list else "other"])
        profile.observe(f"i{n}", ts=float(n), action="click")
    return exposure.attention(*profile.list_takes)


def test_the_negatives_of_the_next_take_are_drawn_from_what_was_passed_over() -> None:
    def learned(shown: list[str] | None) -> float:
        model = OnlineCF(n_factors=4, seed=1)
        learner = Learner(model)
        learner.catalog.update(f"i{n}" for n in range(50))
        for n in range(20):  # a user who takes what they are shown
            at = float(n)
            learner.learn(Impression(user_id="ann", event="impression", items=[f"i{n}"], ts=at))
            learner.learn(Click(user_id="ann", item_id=f"i{n}", event="click", ts=at))
        if shown is not None:
            impression = Impression(user_id="ann", event="impression", items=shown, ts=30.0)
            assert learner.learn(impression)
            assert not learner.learn(impression)  # a repeat
        learner.learn(Click(user_id="ann", item_id="i1", event="click", ts=31.0))
        return model.predict_one("ann", "i15")

    # Shown and passed over, i15 is the negative of the next take; otherwise random items are.
    assert learned(["i15", "unknown"]) < learned(None)
