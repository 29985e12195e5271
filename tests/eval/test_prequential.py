from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from streamrec.eval.baselines import ImplicitALS, Popular, RecentPopular
from streamrec.eval.datasets import Dataset, Interaction, load_dataset
from streamrec.eval.prequential import PrequentialConfig
from streamrec.eval.protocol import run_prequential
from streamrec.eval.registry import default_recommenders
from streamrec.eval.report import metric_keys, write_report
from streamrec.eval.stream import StreamState
from streamrec.eval.vectors import CachedEncoder
from tests.datasets import MOVIELENS, require

NAMES = ["popular", "recent_popular", "cf", "text", "hybrid", "als"]


class HashEncoder:
    """A stand-in encoder for fast tests: bag of hashed words, L2-normalized."""

    dim = 16
    version = "hash-words-v1"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def _toy_dataset() -> Dataset:
    events = []
    ts = 0.0
    # Two tastes: guitar people and drum people, with reviews that say so.
    for round_ in range(6):
        for u in range(8):
            taste = "guitar" if u % 2 else "drum"
            item = f"{taste}{(u + round_) % 5}"
            ts += 60.0
            text = f"great {taste} sound" if round_ % 2 == 0 else None
            events.append(Interaction(f"u{u}", item, ts, rating=4.0 + (u % 2), text=text))
    return Dataset("toy", Path("toy"), "csv", events, item_texts={"guitar9": "a guitar"})


def test_toy_stream_runs_every_recommender_and_scores_the_same_events():
    data = _toy_dataset()
    recs = default_recommenders(NAMES, text_dim=HashEncoder.dim, batch_params={"retrain_every": 10})
    result = run_prequential(data, recs, HashEncoder(), PrequentialConfig(ks=(2, 5), n_negatives=5))
    assert list(result.recommenders) == NAMES
    n_scored = result.protocol["n_scored"]
    assert n_scored + result.protocol["n_repeats_not_scored"] == len(data.interactions)
    for name, slices in result.recommenders.items():
        assert set(slices) == {"all", "cold_items", "cold_users"}
        assert slices["all"]["n"] == n_scored
        assert 0.0 <= slices["all"]["hr@2"] <= slices["all"]["hr@5"] <= 1.0
        assert len(result.hits[name]) == n_scored
    assert result.recommenders["cf"]["all"]["mae"] == result.recommenders["hybrid"]["all"]["mae"]
    assert result.recommenders["popular"]["all"]["mae"] is None
    # The catalog item and every item in the stream are known at the end.
    assert result.protocol["n_items_known_at_end"] == 11


def test_liked_hr_and_panned_hits_count_only_the_events_rated_so() -> None:
    events = []
    for n in range(60):
        rating = (1.0, 2.0, 3.0, 4.0, 5.0)[n % 5]
        events.append(Interaction(f"u{n % 7}", f"i{n % 9}", 60.0 * n, rating=rating))
    data = Dataset("rated", Path("rated"), "csv", events)
    result = run_prequential(data, default_recommenders(["popular", "cf"]), None, PrequentialConfig(ks=(3,)))
    for name in ("popular", "cf"):
        figures = result.recommenders[name]["all"]
        hits = result.hits[name]
        ratings = np.array([events[n].rating for n in result.event_index])
        assert figures["n_liked"] == int((ratings >= 4).sum()) and figures["n_panned"] == int(
            (ratings <= 2).sum()
        )
        assert figures["liked_hr@3"] == pytest.approx(hits[ratings >= 4].mean(), abs=1e-6)
        assert figures["panned_hit@3"] == pytest.approx(hits[ratings <= 2].mean(), abs=1e-6)
        lo, hi = result.protocol["intervals"]["recommenders"][name]["all"]["panned_hit@3"]
        assert lo <= figures["panned_hit@3"] <= hi


def test_each_opinion_part_has_a_row_that_flips_it_alone() -> None:
    from streamrec.eval.registry import PART_ROWS
    from streamrec.model.text.opinion_parts import DEFAULT_PARTS, PARTS

    recs = {r.name: r for r in default_recommenders(["hybrid", "hybrid_no_opinions", *PART_ROWS.values()])}
    hybrid = recs["hybrid"]
    assert hybrid.rec.opinions == frozenset(DEFAULT_PARTS)
    assert recs["hybrid_no_opinions"].rec.opinions == frozenset()
    for part, name in PART_ROWS.items():
        flipped = recs[name].rec.opinions ^ hybrid.rec.opinions
        assert flipped == {part}, name
        # CF learns panned reviews as negatives exactly where that part is on.
        assert recs[name].shared.negatives == ("cf_negatives" in recs[name].rec.opinions)
    assert set(PART_ROWS) == set(PARTS)


def test_popular_baselines_and_als_rank_unseen_items_only():
    state = StreamState(text_dim=1)
    recs = [
        Popular(),
        RecentPopular(half_life_events=2),
        ImplicitALS(factors=4, retrain_every=3, iterations=3),
    ]
    for rec in recs:
        rec.start(state, {})
    events = [("a", "x"), ("b", "x"), ("b", "y"), ("c", "z"), ("c", "y"), ("a", "y")]
    for n, (user, item) in enumerate(events):
        state.n_events = n
        pos = state.add_item(item)
        for rec in recs:
            rec.learn(Interaction(user, item, float(n)), None)
        state.seen.setdefault(user, {})[pos] = None
    for rec in recs:
        top, probe = rec.rank("a", 3, np.array([state.pos["z"], state.pos["x"]]))
        ranked = [state.items[p] for p in top]
        assert "x" not in ranked and "y" not in ranked, rec.name
        assert probe is not None and len(probe) == 2
    assert [state.items[p] for p in recs[0].rank("d", 3, None)[0]] == ["y", "x", "z"]
    assert recs[2].n_trains >= 1


def test_cached_encoder_memory_and_disk(tmp_path):
    inner = HashEncoder()
    enc = CachedEncoder(inner, cache_dir=tmp_path)
    first = enc.encode(["red guitar", "blue drum", "red guitar"])
    enc.save()  # written every SAVE_EVERY rows, and when the run is done
    assert enc.n_encoded == 2 and inner.calls == 1
    again = CachedEncoder(HashEncoder(), cache_dir=tmp_path)
    second = again.encode(["blue drum", "red guitar"])
    assert again.n_encoded == 0 and again.n_cached == 2
    np.testing.assert_allclose(second, first[[1, 0]])
    assert len(list(tmp_path.glob("rows-*.npz"))) == 1


@pytest.mark.slow
def test_ml100k_slice_with_the_real_encoder_writes_a_sane_report(tmp_path):
    from streamrec.model.text.encoder import TransformerEncoder

    data = load_dataset(require(MOVIELENS), limit=2000)
    # Titles of the items in the slice only: encoding the whole catalog would be most of the time.
    in_slice = {e.item for e in data.interactions}
    data.item_texts = {i: t for i, t in data.item_texts.items() if i in in_slice}
    encoder = CachedEncoder(TransformerEncoder(max_length=32))
    recs = default_recommenders(NAMES, text_dim=encoder.dim, batch_params={"retrain_every": 500})
    result = run_prequential(data, recs, encoder, PrequentialConfig(n_negatives=50))
    paths = write_report(result, tmp_path)

    report = json.loads(paths["json"].read_text())
    assert set(report) == {"dataset", "protocol", "recommenders"}
    assert list(report["recommenders"]) == NAMES
    assert report["dataset"]["n_interactions"] == len(data.interactions)
    keys = metric_keys([10, 20])
    assert "hr@20" in keys and "diversity@20" in keys
    for name, slices in report["recommenders"].items():
        assert list(slices) == ["all", "cold_items", "cold_users"]
        for values in slices.values():
            assert list(values) == keys
        everything = slices["all"]
        assert 0.0 <= everything["hr@10"] <= everything["hr@20"] <= 1.0
        assert everything["ndcg@10"] <= everything["hr@10"]
        assert everything["mrr@10"] <= everything["ndcg@10"] + 1e-9
        assert everything["recall@10"] == pytest.approx(everything["hr@10"])
        assert everything["precision@10"] == pytest.approx(everything["hr@10"] / 10)
        assert 0.0 < everything["coverage@10"] <= everything["coverage@20"] <= 1.0
        assert 0.0 <= everything["diversity@10"] <= 2.0
        assert 0.0 <= everything["auc"] <= 1.0
    for name in ("cf", "hybrid"):
        mae = report["recommenders"][name]["all"]["mae"]
        assert 0.5 < mae < 1.2 and report["recommenders"][name]["all"]["rmse"] >= mae
    assert report["recommenders"]["popular"]["all"]["mae"] is None
    # Popularity is a real signal on MovieLens: far better than chance (10 / 1682).
    assert report["recommenders"]["popular"]["all"]["hr@10"] > 0.02
    assert report["recommenders"]["popular"]["all"]["auc"] > 0.5
    # The slices hold the events the protocol defines, counted here from the stream itself.
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    expected = {"all": 0, "cold_items": 0, "cold_users": 0}
    for e in data.interactions:  # no user rates a movie twice: every event is scored
        expected["all"] += 1
        expected["cold_items"] += items.get(e.item, 0) < 5
        expected["cold_users"] += users.get(e.user, 0) < 5
        users[e.user] = users.get(e.user, 0) + 1
        items[e.item] = items.get(e.item, 0) + 1
    assert report["protocol"]["events_per_slice"] == expected
    assert "hr@10" in paths["md"].read_text()
    assert paths["png"].stat().st_size > 10_000
    assert not math.isnan(report["recommenders"]["hybrid"]["cold_users"]["hr@10"])


def test_leave_one_out_holds_out_each_users_last_interaction_and_learns_the_rest():
    data = _toy_dataset()
    recs = default_recommenders(
        ["popular", "cf", "als"], text_dim=HashEncoder.dim, batch_params={"retrain_every": 10}
    )
    result = run_prequential(
        data, recs, HashEncoder(), PrequentialConfig(ks=(2, 5), protocol="leave-one-out")
    )
    users = {e.user for e in data.interactions}
    # One scored event per user (every toy user has several), none of the stream's others.
    assert result.protocol["n_scored"] == len(users)
    assert result.recommenders["popular"]["all"]["n"] == len(users)
    last = {e.user: n for n, e in enumerate(data.interactions)}
    assert sorted(result.event_index.tolist()) == sorted(last.values())
    assert "leave-one-out" in result.protocol["scheme"]
    assert recs[2].n_trains >= 1  # the batch peer was retrained on everything learned
