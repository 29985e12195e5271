"""Contract checks for the online CF model (as river's `checks/` run them over estimators)."""

from __future__ import annotations

import copy
import pickle
import random

import numpy as np

from streamrec.model.cf import OnlineCF


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
