"""Index, popularity, profiles and the hybrid ranker, without a broker."""

from __future__ import annotations

import math
import pickle
import random
import tracemalloc

import numpy as np
import pytest

from streamrec.model.index import MemoryIndex
from streamrec.model.ranking.cooccurrence import CoOccurrence
from streamrec.model.ranking.popularity import Popularity
from streamrec.model.serving.recommender import Recommender
from streamrec.model.users.profile import UserProfile


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_memory_index_matches_brute_force_and_handles_deletes() -> None:
    rng = np.random.default_rng(0)
    index = MemoryIndex({"text": (8, "cosine"), "cf": (8, "dot")})
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    ids = [f"i{n}" for n in range(300)]
    index.upsert("text", ids, vectors)
    index.upsert("cf", ids[:100], vectors[:100])
    query = rng.standard_normal(8).astype(np.float32)
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = [ids[j] for j in np.argsort(-(normed @ (query / np.linalg.norm(query))))[:10]]
    assert [i for i, _ in index.search("text", query, 10)] == expected
    assert all(i in ids[:100] for i, _ in index.search("cf", query, 50))  # only items that have a cf vector
    index.delete(expected[:3])
    assert [i for i, _ in index.search("text", query, 7)] == expected[3:10]
    index.upsert("text", ["new"], query[None, :])
    assert index.search("text", query, 1)[0][0] == "new"
    assert len(index) == 298


def test_cooccurrence_matches_a_plain_reading_of_its_definition() -> None:
    """Neighbors and contributions against the definition, on counts full of ties."""
    rng = random.Random(0)
    co = CoOccurrence(window=5, max_neighbors=40)
    histories: dict[int, list[str]] = {}
    for _ in range(5_000):
        history = histories.setdefault(rng.randrange(100), [])
        item = f"i{rng.randrange(60)}"
        co.learn_one(list(reversed(history))[:5], item)
        history.append(item)
    for _ in range(50):
        recent = [f"i{rng.randrange(70)}" for _ in range(6)]  # some never seen
        n = rng.choice([1, 5, 30, 100])
        merged: dict[str, float] = {}
        for depth, previous in enumerate(recent[:3]):
            row = co.row(previous)
            strongest = sorted(row.items(), key=lambda kv: kv[1], reverse=True)[
                :n
            ]  # stable: ties in row order
            for item, value in strongest:
                merged[item] = merged.get(item, 0.0) + co.decay**depth * value
        assert co.neighbors(recent, n) == sorted(merged.items(), key=lambda kv: kv[1], reverse=True)[:n]

        items = [f"i{j}" for j in rng.sample(range(70), rng.choice([3, 65]))]  # candidates are distinct
        expected = np.array(
            [
                [
                    co.decay**r
                    * co.row(previous).get(item, 0.0)
                    / math.sqrt(max(co.count(previous), 1.0) * max(co.count(item), 1.0))
                    for item in items
                ]
                for r, previous in enumerate(recent[: co.window])
            ]
        )
        np.testing.assert_allclose(co.contributions(recent, items), expected, rtol=1e-12)


def _plain_counts(events: list[tuple[list[str], str]], window: int, decay: float) -> tuple[dict, dict]:
    """Item-to-item counts by their definition, in dicts (no pruning, backward weight 1)."""
    rows: dict[str, dict[str, float]] = {}
    counts: dict[str, float] = {}
    for recent, item in events:
        counts[item] = counts.get(item, 0.0) + 1.0
        w = 1.0
        for previous in recent[:window]:
            if previous != item:
                for a, b in ((previous, item), (item, previous)):
                    rows.setdefault(a, {})[b] = rows.get(a, {}).get(b, 0.0) + w
            w *= decay
    return rows, counts


def test_cooccurrence_takes_back_what_it_learned_and_keeps_it_across_a_checkpoint() -> None:
    """Counts learned, half of them taken back (entries leave their rows' arrays), and the rest
    as if only the kept events were learned; the same after a pickle, and from the dict-of-dicts
    state that checkpoints held before."""
    rng = random.Random(1)
    co = CoOccurrence(window=3)
    events = []
    for _ in range(3_000):
        recent = [f"i{rng.randrange(40)}" for _ in range(rng.randrange(5))]
        item = f"i{rng.randrange(40)}"
        co.learn_one(recent, item)
        events.append((recent, item))
    gone = set(rng.sample(range(len(events)), 1_500))
    for n in sorted(gone):
        co.unlearn_one(*events[n])
    rows, counts = _plain_counts([e for n, e in enumerate(events) if n not in gone], co.window, co.decay)
    items = [f"i{n}" for n in range(45)]
    old_state = {"window": 3, "decay": co.decay, "backward": 1.0, "max_neighbors": 1000,
                 "_rows": {a: dict(row) for a, row in rows.items()}, "_counts": dict(counts)}  # fmt: skip
    old = CoOccurrence.__new__(CoOccurrence)
    old.__setstate__(old_state)
    for model in (co, pickle.loads(pickle.dumps(co)), old):
        for item in items:
            assert model.count(item) == pytest.approx(counts.get(item, 0.0))
            mine = model.row(item)
            assert mine.keys() == rows.get(item, {}).keys(), item
            assert list(mine.values()) == pytest.approx([rows[item][k] for k in mine])
        recent = ["i1", "i2", "i3"]
        np.testing.assert_allclose(
            model.contributions(recent, items), co.contributions(recent, items), rtol=1e-9, atol=1e-12
        )
        # Ties among the strongest may come in another order (rows keep their own orders).
        assert [v for _, v in model.neighbors(recent, 10)] == pytest.approx(
            [v for _, v in co.neighbors(recent, 10)]
        )
    assert pickle.loads(pickle.dumps(co)).neighbors(["i1", "i2"], 10) == co.neighbors(["i1", "i2"], 10)
    assert co.entries() == sum(len(row) for row in rows.values())


def test_popularity_ranks_by_counts_and_decays_in_event_time() -> None:
    pop = Popularity(half_life_s=3600)
    for _ in range(10):
        pop.learn_one("old", ts=0)
    for _ in range(2):
        pop.learn_one("fresh", ts=10 * 3600)
    assert [i for i, _ in pop.top(2, decayed=False)] == ["old", "fresh"]
    assert [i for i, _ in pop.top(2, decayed=True)] == ["fresh", "old"]
    assert [i for i, _ in pop.top(2, exclude={"fresh"})] == ["old"]
    pop.unlearn("old", 10, ts=0)
    assert pop.count("old") == 0


def _shop() -> Recommender:
    rec = Recommender(text_dim=3, cf_dim=3)
    catalog = {
        "guitar": ("Acoustic guitar", _unit(1, 0, 0)),
        "strings": ("Guitar strings", _unit(0.95, 0.1, 0)),
        "capo": ("Guitar capo", _unit(0.9, 0.2, 0)),
        "drum": ("Snare drum", _unit(0, 1, 0)),
        "sticks": ("Drum sticks", _unit(0.1, 0.95, 0)),
        "piano": ("Piano", _unit(0, 0, 1)),
    }
    for item, (title, vector) in catalog.items():
        rec.on_item(item, title, vector, ts=0)
    return rec


def test_a_new_users_first_review_personalizes_and_explains() -> None:
    rec = _shop()
    rec.on_review("ann", "guitar", 5, ts=10, vector=_unit(1, 0.05, 0))
    top = rec.recommend(["ann"], k=3)[0]
    assert {s.item_id for s in top[:2]} == {"strings", "capo"}
    assert "guitar" not in {s.item_id for s in top}
    assert any("Acoustic guitar" in reason for reason in top[0].reasons)


def test_bursts_of_popularity_do_not_swamp_text_for_a_new_item() -> None:
    rec = _shop()
    for n in range(50):
        rec.on_click(f"crowd{n}", "piano", "click", ts=n)
    rec.on_item("ukulele", "Ukulele", _unit(0.97, 0.05, 0.0), ts=60)  # no interaction at all
    rec.on_review("bob", "guitar", 5, ts=70, vector=_unit(1, 0, 0))
    ids = [s.item_id for s in rec.recommend(["bob"], k=3)[0]]
    assert "ukulele" in ids


def test_diversity_mixes_in_other_kinds_when_lambda_is_low() -> None:
    focused = _shop()
    diverse = Recommender(text_dim=3, cf_dim=3, mmr_lambda=0.3)
    for rec in (focused, diverse):
        rec.on_item("guitar", "Acoustic guitar", _unit(1, 0, 0), ts=0)
        for n in range(8):
            rec.on_item(f"g{n}", f"Guitar thing {n}", _unit(1, 0.01 * n, 0), ts=0)
        rec.on_item("drum", "Snare drum", _unit(0.3, 1, 0), ts=0)
        rec.on_review("cat", "guitar", 5, ts=1, vector=_unit(1, 0, 0))
    assert "drum" not in [s.item_id for s in focused.recommend(["cat"], k=3)[0]]
    assert "drum" in [s.item_id for s in diverse.recommend(["cat"], k=3)[0]]


def test_forget_erases_the_user_and_their_popularity() -> None:
    rec = _shop()
    rec.on_click("dan", "drum", "purchase", ts=1)
    rec.on_user_cf(["dan"], np.ones((1, 3), dtype=np.float32))
    assert rec.popularity.count("drum") > 0
    assert rec.forget("dan")
    assert "dan" not in rec.profiles and "dan" not in rec.user_cf
    assert rec.popularity.count("drum") == 0
    assert rec.recommend(["dan"], k=3)[0]  # a stranger again: popularity and nothing personal


def test_a_withdrawn_item_leaves_every_source_of_candidates_and_returns_as_it_was() -> None:
    rec = _shop()
    rec.on_item_cf(["strings", "capo", "drum"], np.eye(3, dtype=np.float32))
    for n in range(30):  # strings: the most popular item, and what follows a guitar
        rec.on_click(f"crowd{n}", "guitar", "click", ts=n)
        rec.on_click(f"crowd{n}", "strings", "purchase", ts=n + 0.5)
    rec.on_review("eve", "guitar", 5, ts=40, vector=_unit(1, 0.05, 0))
    rec.on_user_cf(["eve"], np.array([[1, 0, 0]], dtype=np.float32))  # strings' CF direction
    rec.on_click("fay", "drum", "click", ts=41)
    users = ["eve", "fay", "stranger"]

    def lists() -> list[list[str]]:
        return [[s.item_id for s in scored] for scored in rec.recommend(users, k=4)]

    before = lists()
    assert all("strings" in ids for ids in before), before

    assert rec.withdraw("strings") and not rec.withdraw("strings")
    assert not rec.available("strings")
    gone = lists()
    assert all("strings" not in ids for ids in gone), gone
    assert all(len(ids) == 4 for ids in gone)  # refilled from the rest of the catalog
    assert rec.item_text("strings") is not None  # kept, to return as it was

    assert rec.restore("strings") and not rec.restore("strings")
    assert lists() == before


def test_a_serialized_profile_holds_no_more_memory_than_its_bytes() -> None:
    profile = UserProfile("ann")
    for n in range(30):
        profile.observe(f"item-{n}", ts=float(n), action="click")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [profile.to_bytes() for _ in range(100)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert held < 2 * len(kept[0]) + 256, (held, len(kept[0]))


def test_an_item_is_recommended_for_looking_like_what_the_user_took() -> None:
    """Text says nothing here (every title alike); the producer's image vectors tell the lamps apart."""
    rec = Recommender(text_dim=3, cf_dim=3, modalities={"image": 4})
    looks = {
        "brass-lamp": (1, 0, 0, 0),
        "glass-lamp": (0, 1, 0, 0),
        "paper-lamp": (0, 0, 1, 0),
        "steel-lamp": (0, 0, 0, 1),
        "brass-lamp-tall": (0.95, 0.1, 0, 0),
    }
    for item, image in looks.items():
        rec.on_item(item, item.replace("-", " "), _unit(1, 0.01, 0), ts=0)
        rec.on_item_vector(item, "image", np.array(image, dtype=np.float32))
    rec.on_item("plain-lamp", "plain lamp", _unit(1, 0.01, 0), ts=0)  # no picture at all
    rec.on_click("ann", "brass-lamp", "click", ts=1)
    top = rec.recommend(["ann"], k=3)[0]
    assert top[0].item_id == "brass-lamp-tall"
    assert "looks like 'brass lamp' you clicked" in top[0].reasons
    # Without the image signal, nothing sets it apart.
    rec.ranker.w_looks = 0.0
    assert rec.recommend(["ann"], k=1)[0][0].item_id != "brass-lamp-tall"
    # A picture taken back leaves the item with its text alone.
    rec.ranker.w_looks = 0.5
    rec.on_item_vector("brass-lamp-tall", "image", None)
    assert not rec.index.has("image", "brass-lamp-tall")
    assert "looks like" not in " ".join(rec.recommend(["ann"], k=1)[0][0].reasons)
