"""A forgotten user's every event leaves the counts shared by all users, not only their latest."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.model.serving.recommender import Recommender


def _events(rec: Recommender, user: str, items: list[str], start: float) -> None:
    for n, item in enumerate(items):
        if n % 7 == 3:
            rec.on_click(user, item, "dislike", ts=start + n)
        elif n % 5 == 0:
            rec.on_review(user, item, 4.0, ts=start + n, vector=None)
        else:
            rec.on_click(user, item, "click", ts=start + n * 3600.0)


def _recommender() -> Recommender:
    rec = Recommender(text_dim=2, cf_dim=3)
    for n in range(40):
        rec.on_item(f"i{n}", f"Item {n}", np.array([1.0, n], dtype=np.float32), ts=0)
    return rec


def test_forgetting_takes_back_every_event_beyond_the_profile() -> None:
    rng = np.random.default_rng(3)
    ann = [f"i{n}" for n in rng.integers(0, 40, size=120)]  # more than a profile keeps
    bob = [f"i{n}" for n in rng.integers(0, 40, size=30)]
    both, alone = _recommender(), _recommender()
    _events(both, "bob", bob[:15], start=0.0)
    _events(both, "ann", ann, start=100.0)
    _events(both, "bob", bob[15:], start=1e6)
    _events(alone, "bob", bob[:15], start=0.0)
    _events(alone, "bob", bob[15:], start=1e6)
    assert len(both.profile("ann").history) < len(ann)

    assert both.forget("ann") and not both.forget("ann")
    items = [f"i{n}" for n in range(40)]
    assert [both.popularity.takes(i) for i in items] == [alone.popularity.takes(i) for i in items]
    assert both.popularity.counts(items) == pytest.approx(alone.popularity.counts(items))
    assert both.popularity.scores(items) == pytest.approx(alone.popularity.scores(items), abs=1e-9)
    for item in items:
        assert both.cooccurrence.count(item) == pytest.approx(alone.cooccurrence.count(item))
        mine, theirs = both.cooccurrence.row(item), alone.cooccurrence.row(item)
        assert mine.keys() == theirs.keys(), item
        assert list(mine.values()) == pytest.approx([theirs[k] for k in mine])
    assert "ann" not in both.contributions
