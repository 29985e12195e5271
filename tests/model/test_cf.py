"""Contract checks for the online CF model (as river's `checks/` run them over estimators)."""

from __future__ import annotations

import copy
import pickle
import random

import numpy as np

from streamrec.model.cf.mf import OnlineCF


def _stream(n: int = 2000, seed: int = 0) -> list[tuple[str, str, float | None]]:
    rng = random.Random(seed)
    # Two tastes: users 0-19 like items a*, users 20-39 like items b*.
    out = []
    for _ in range(n):
        u = rng.randrange(40)
        group = "a" if u < 20 else "b"
        out.append((f"u{u}", f"{group}{rng.randrange(10)}", rng.choice([None, 4.0, 5.0])))
    return out


def _learn(model: OnlineCF, events: list[tuple[str, str, float | None]]) -> OnlineCF:
    for u, i, y in events:
        model.learn_one(u, i, y)
    return model


def test_learns_the_two_tastes() -> None:
    model = _learn(OnlineCF(seed=3), _stream())
    assert model.predict_one("u1", "a1") > model.predict_one("u1", "b1")
    assert model.predict_one("u30", "b1") > model.predict_one("u30", "a1")
    ranked = model.rank("u1", [f"b{i}" for i in range(10)] + [f"a{i}" for i in range(10)])
    assert sum(item.startswith("a") for item in ranked[:10]) >= 8


def test_same_seed_same_model_and_pickle_round_trip() -> None:
    events = _stream(500)
    a, b = _learn(OnlineCF(seed=7), events), _learn(OnlineCF(seed=7), events)
    assert a.predict_one("u3", "a2") == b.predict_one("u3", "a2")
    restored = pickle.loads(pickle.dumps(a))
    assert restored.predict_one("u3", "a2") == a.predict_one("u3", "a2")
    _learn(restored, events[:10])
    _learn(a, events[:10])
    assert restored.predict_one("u3", "a2") == a.predict_one("u3", "a2")
    clone = copy.deepcopy(a)
    assert clone.predict_rating("u3", "a2") == a.predict_rating("u3", "a2")


def test_rank_agrees_with_predict_one_and_vectors() -> None:
    model = _learn(OnlineCF(seed=1), _stream(800))
    items = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    by_predict = sorted(items, key=lambda i: -model.predict_one("u5", i))
    assert model.rank("u5", items) == by_predict
    user = model.user_vector("u5")
    # [p_u, 1] . [q_i, b_i] = p_u . q_i + b_i = predict_one
    for item in items[:5]:
        assert np.isclose(user @ model.item_vector(item), model.predict_one("u5", item), atol=1e-5)


def test_scoring_unseen_ids_does_not_grow_the_state() -> None:
    model = _learn(OnlineCF(seed=1), _stream(300))
    sizes = (model.n_users, model.n_items, len(model.implicit.i_latents), len(model.explicit.u_latents))
    model.predict_one("stranger", "a1")
    model.predict_one("u1", "unknown-item")
    model.predict_rating("stranger", "unknown-item")
    model.rank("stranger", ["a1", "zzz"])
    model.score_items("u1", ["zzz", "yyy"])
    assert model.user_vector("stranger") is None and model.item_vector("zzz") is None
    after = (model.n_users, model.n_items, len(model.implicit.i_latents), len(model.explicit.u_latents))
    assert after == sizes


def test_ratings_stay_in_range_and_forgetting_removes_the_user() -> None:
    model = _learn(OnlineCF(seed=1), _stream(500))
    assert all(1.0 <= model.predict_rating(f"u{u}", f"a{i}") <= 5.0 for u in range(5) for i in range(5))
    assert model.forget_user("u1")
    assert not model.knows_user("u1") and model.user_vector("u1") is None
    assert "u1" not in model.explicit.u_latents and "u1" not in model.explicit.u_biases
    assert not model.forget_user("u1")


def test_workers_sharing_item_deltas_hold_one_set_of_item_factors() -> None:
    events = _stream(3000, seed=5)
    a, b, alone = OnlineCF(seed=1), OnlineCF(seed=2), OnlineCF(seed=1)
    for n, (u, i, y) in enumerate(events):
        # Users are split between two workers, as partitions split them.
        (a if int(u[1:]) % 2 else b).learn_one(u, i, y)
        alone.learn_one(u, i, y)
        if n % 100 == 99:
            da, db = a.take_item_deltas(), b.take_item_deltas()
            a.apply_item_deltas(db)
            b.apply_item_deltas(da)
    da, db = a.take_item_deltas(), b.take_item_deltas()
    a.apply_item_deltas(db)
    b.apply_item_deltas(da)
    items = sorted({i for _, i, _ in events})
    assert np.allclose(a.item_vectors(items), b.item_vectors(items), atol=1e-5)
    # Each worker ranks its own users as well as one model that saw everything.
    for user, worker in (("u1", a), ("u2", b), ("u31", a), ("u30", b)):
        taste = "a" if int(user[1:]) < 20 else "b"
        top = worker.rank(user, items)[:10]
        assert sum(item.startswith(taste) for item in top) >= 8, (user, top)
        assert sum(item.startswith(taste) for item in alone.rank(user, items)[:10]) >= 8


def test_an_item_starts_from_the_same_factors_in_every_worker() -> None:
    a, b = OnlineCF(seed=3), OnlineCF(seed=3)
    a.learn_one("x", "guitar")
    b.learn_one("y", "drum")
    b.learn_one("y", "guitar")
    fresh_a, fresh_b = OnlineCF(seed=3), OnlineCF(seed=3)
    fresh_a.apply_item_deltas({"guitar": np.zeros(17, dtype=np.float32)})
    fresh_b.apply_item_deltas({"guitar": np.zeros(17, dtype=np.float32)})
    assert np.array_equal(fresh_a.item_vector("guitar"), fresh_b.item_vector("guitar"))
