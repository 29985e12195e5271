"""The learned blend: missing evidence is missing, a weight learns only from takes among the
candidates and only after them, a pan pushes its item down."""

from __future__ import annotations

import numpy as np

from streamrec.model.ranking.blend import LearnedBlend
from streamrec.model.serving.recommender import Recommender


def _rec(**params: object) -> Recommender:
    rec = Recommender(text_dim=2, cf_dim=3, item_model=False, **params)  # type: ignore[arg-type]
    for n, item in enumerate(["a", "b", "c", "d"]):
        rec.on_item(item, item.upper(), np.array([1.0, 0.1 * n], dtype=np.float32), ts=0)
    return rec


def test_an_item_nobody_took_is_unknown_on_popularity_not_least_popular() -> None:
    rec = _rec(learn_blend=False, mmr_lambda=1.0)
    # Same text for every item; "a", "b", "c" taken (c once), "d" by nobody.
    for user, item in [("u1", "a"), ("u2", "a"), ("u3", "b"), ("u4", "b"), ("u5", "c")]:
        rec.on_click(user, item, "click", ts=1.0)
    ids = ["a", "b", "c", "d"]
    relevance = rec.ranker.relevance(rec.request("new-user"), ids)
    # "c" is the least popular of the taken items: below average; "d" has no evidence: average.
    assert relevance[3] > relevance[2]
    features = rec.ranker._blend(rec.request("new-user"), ids).features
    assert features[:, rec.ranker.blend.names.index("missing_pop")].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_the_blend_learns_a_take_among_the_candidates_after_the_list_was_ranked() -> None:
    rec = _rec()
    rec.on_click("ann", "a", "click", ts=1.0)
    before = rec.ranker.blend.theta.copy()
    listed = [s.item_id for s in rec.recommend(["ann"], k=2)[0]]
    assert (rec.ranker.blend.theta == before).all(), "ranking learns nothing"
    rec.on_click("ann", listed[-1], "click", ts=2.0)
    assert rec.ranker.blend.n_learned == 1 and not (rec.ranker.blend.theta == before).all()


def test_a_take_outside_the_candidates_teaches_nothing() -> None:
    rec = _rec()
    rec.on_click("ann", "a", "click", ts=1.0)
    rec.recommend(["ann"], k=2)
    rec.ranker.ranked["ann"] = ["b"]  # as if retrieval had found "b" alone
    before = rec.ranker.blend.theta.copy()
    rec.on_click("ann", "c", "click", ts=2.0)
    assert (rec.ranker.blend.theta == before).all() and rec.ranker.blend.n_outside == 1


def test_a_pan_lowers_what_the_panned_item_has_more_of() -> None:
    blend = LearnedBlend({"text": 1.0, "pop": 1.0})
    x = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    features = blend.features(x, np.ones((3, 2), dtype=bool), 0.5, np.ones(3), np.zeros(3))
    for _ in range(30):
        blend.learn(features, positive=0, liked=False)
    assert blend.weight("text", 5, 50) < 1.0 and blend.n_panned == 30


def test_a_blend_with_a_signal_off_never_learns_it() -> None:
    blend = LearnedBlend({"text": 0.0, "pop": 1.0})
    x = np.array([[1.0, -1.0], [-1.0, 1.0]])
    features = blend.features(x, np.ones((2, 2), dtype=bool), 0.5, np.ones(2), np.zeros(2))
    for _ in range(20):
        blend.learn(features, positive=0)
    assert blend.weight("text", 5, 50) == 0.0 and not features[:, :4].any()
