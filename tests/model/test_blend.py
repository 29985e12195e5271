"""The learned blend: missing evidence is missing, a weight learns only from takes among the
candidates and only after them, a pan pushes its item down."""

from __future__ import annotations

import copy

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


def _ranked(users: list[str]) -> tuple[Recommender, list[tuple[str, str]]]:
    """Users ranked for, and a take each of the last item on their list."""
    rec = _rec()
    for n, user in enumerate(users):
        rec.on_click(user, "abcd"[n % 4], "click", ts=1.0)
    lists = rec.recommend(users, k=2)
    return rec, [(user, scored[-1].item_id) for user, scored in zip(users, lists, strict=True)]


def test_a_take_scored_ahead_with_its_batch_is_learned_as_it_would_be_alone() -> None:
    alone, takes = _ranked(["ann"])
    alone.on_click(*takes[0], "click", ts=2.0)
    ahead, _ = _ranked(["ann"])
    with ahead.learning_batch(takes) as prepared:
        ahead.on_click(*takes[0], "click", ts=2.0)
    assert prepared == 1 and ahead.ranker.blend.n_learned == alone.ranker.blend.n_learned == 1
    assert (ahead.ranker.blend.theta == alone.ranker.blend.theta).all()
    assert not ahead.ranker._prepared, "what a batch prepared does not outlive it"


def test_a_batch_scored_ahead_learns_each_take_against_the_state_before_the_batch() -> None:
    users = [f"u{n}" for n in range(8)]
    rec, takes = _ranked(users)
    before = copy.deepcopy(rec)
    with rec.learning_batch([*takes, ("nobody-ranked", "a")]) as prepared:
        for user, item in takes:
            rec.on_click(user, item, "click", ts=2.0)
    assert prepared == len(users) == rec.ranker.blend.n_learned
    # The same takes learned in order against a copy of the state before the batch, which no
    # take changes: the blend the batch learned, to float32 rounding (one product for all, or one each).
    for user, item in takes:
        assert before.ranker.learn(before.request(user), item)
    assert np.allclose(rec.ranker.blend.theta, before.ranker.blend.theta, rtol=0, atol=1e-6)
    # Taken one at a time, each take sees the popularity the batch's earlier takes added.
    one_by_one, _ = _ranked(users)
    for user, item in takes:
        one_by_one.on_click(user, item, "click", ts=2.0)
    assert not np.allclose(one_by_one.ranker.blend.theta, rec.ranker.blend.theta, rtol=0, atol=1e-3)


def test_takes_of_one_user_in_a_long_list_share_one_scoring_and_learn_as_alone() -> None:
    rng = np.random.default_rng(7)
    rec = Recommender(text_dim=8, cf_dim=3, item_model=False)
    items = [f"i{n}" for n in range(300)]
    for item in items:
        rec.on_item(item, item, rng.normal(size=8).astype(np.float32), ts=0)
    for n in range(40):
        rec.on_click(f"u{n % 3}", items[(n * 7) % 300], "click", ts=1.0 + n)
    rec.recommend(["u0", "u1"], k=10)
    # Lists longer than what a take is learned against: each take draws its own share of it.
    rec.ranker.ranked["u0"] = list(reversed(items))
    rec.ranker.ranked["u1"] = items[:120]
    takes = [("u0", "i5"), ("u0", "i150"), ("u1", "i3"), ("u0", "i299")]
    before = copy.deepcopy(rec)
    with rec.learning_batch(takes) as prepared:
        for user, item in takes:
            rec.on_click(user, item, "click", ts=100.0)
    assert prepared == 4 == rec.ranker.blend.n_learned
    for user, item in takes:
        assert before.ranker.learn(before.request(user), item)
    assert np.allclose(rec.ranker.blend.theta, before.ranker.blend.theta, rtol=0, atol=1e-6)
