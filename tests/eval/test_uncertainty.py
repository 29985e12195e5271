"""Bootstrap intervals over users: what they cover, and what they tell apart."""

from __future__ import annotations

import numpy as np

from streamrec.eval.uncertainty import bootstrap_intervals


def _stream(
    rate: float, n_users: int = 400, per_user: int = 5, seed: int = 1
) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    users = [f"u{u}" for u in range(n_users) for _ in range(per_user)]
    return users, (rng.random(len(users)) < rate).astype(np.float64)


def test_an_interval_holds_the_figure_and_narrows_with_more_users() -> None:
    users, hits = _stream(0.2)
    everything = {"all": np.ones(len(users), dtype=bool)}
    wide = bootstrap_intervals(users[:250], {"x": {"hr": hits[:250]}}, {"all": everything["all"][:250]})
    narrow = bootstrap_intervals(users, {"x": {"hr": hits}}, everything)
    lo, hi = narrow["recommenders"]["x"]["all"]["hr"]
    assert lo <= hits.mean() <= hi
    wlo, whi = wide["recommenders"]["x"]["all"]["hr"]
    assert whi - wlo > hi - lo


def test_a_ratio_tells_a_real_difference_from_none() -> None:
    users, better = _stream(0.3, seed=2)
    _, worse = _stream(0.15, seed=3)
    everything = {"all": np.ones(len(users), dtype=bool)}
    out = bootstrap_intervals(
        users,
        {"a": {"hr": better}, "b": {"hr": worse}, "c": {"hr": better}},
        everything,
        [("a", "b"), ("a", "c")],
    )
    lo, hi = out["ratios"]["a/b"]["all"]["hr"]
    assert lo > 1.0, (lo, hi)  # twice the hits: the interval excludes no difference
    assert out["ratios"]["a/c"]["all"]["hr"] == [1.0, 1.0]  # the same hits: exactly no difference


def test_an_event_that_does_not_count_for_a_metric_is_left_out_of_its_interval() -> None:
    users, hits = _stream(0.25, seed=3)
    liked = np.arange(len(users)) % 2 == 0
    only_liked = np.where(liked, hits, np.nan)
    out = bootstrap_intervals(users, {"x": {"liked": only_liked}}, {"all": np.ones(len(users), dtype=bool)})
    lo, hi = out["recommenders"]["x"]["all"]["liked"]
    assert lo <= hits[liked].mean() <= hi
