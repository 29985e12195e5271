from __future__ import annotations

import math

import numpy as np
import pytest

from streamrec.model.metrics.accumulators import (
    AUC,
    Coverage,
    IntraListDiversity,
    MetricSet,
    Observation,
    RankingMetrics,
    RatingMetrics,
    rank_of,
)
from streamrec.model.metrics.online import ReplayScorer, RollingHitRate


def test_single_target_metrics_by_hand():
    m = RankingMetrics(ks=(2, 5))
    m.observe_rank(1)  # hit at the top
    m.observe_rank(4)  # hit within 5 only
    m.observe_rank(None)  # miss
    m.observe_rank(7)  # beyond both cut-offs
    r = m.result()
    assert m.n == 4
    assert r["hr@2"] == pytest.approx(1 / 4)
    assert r["hr@5"] == pytest.approx(2 / 4)
    assert r["recall@5"] == pytest.approx(r["hr@5"])
    assert r["precision@2"] == pytest.approx((1 / 2) / 4)
    assert r["precision@5"] == pytest.approx((1 / 5 + 1 / 5) / 4)
    assert r["mrr@2"] == pytest.approx(1 / 4)
    assert r["mrr@5"] == pytest.approx((1 + 1 / 4) / 4)
    assert r["ndcg@5"] == pytest.approx((1 + 1 / math.log2(5)) / 4)
    # F1 of one relevant item at rank <= K is 2 / (K + 1).
    assert r["f1@5"] == pytest.approx((2 / 6 + 2 / 6) / 4)


def test_several_relevant_items_by_hand():
    m = RankingMetrics(ks=(3,))
    m.observe(["a", "b", "c", "d"], {"b", "c", "z"})
    r = m.result()
    assert r["hr@3"] == 1.0
    assert r["recall@3"] == pytest.approx(2 / 3)
    assert r["precision@3"] == pytest.approx(2 / 3)
    assert r["f1@3"] == pytest.approx(2 / 3)
    assert r["mrr@3"] == pytest.approx(1 / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert r["ndcg@3"] == pytest.approx(dcg / ideal)


def test_empty_metrics_are_zero():
    assert RankingMetrics(ks=(10,)).result()["hr@10"] == 0.0
    assert AUC().value is None
    assert RatingMetrics().mae is None


def test_rank_of():
    assert rank_of([3, 1, 2], 2) == 3
    assert rank_of([], "a") is None


def test_auc_counts_ties_half():
    auc = AUC()
    assert auc.observe(2.0, [1.0, 2.0, 3.0, 0.0]) == pytest.approx(2.5 / 4)
    assert auc.observe(5.0, [1.0]) == 1.0
    assert auc.observe(5.0, []) is None
    assert auc.value == pytest.approx((2.5 / 4 + 1.0) / 2)
    assert auc.n == 2


def test_coverage_counts_distinct_items_in_top_k():
    cov = Coverage(k=2)
    cov.observe(["a", "b", "c"])
    cov.observe(["b", "a"])
    cov.observe(["d"])
    assert cov.value(n_items=10) == pytest.approx(3 / 10)
    assert Coverage(k=2).value(n_items=0) == 0.0


def test_intra_list_diversity_by_hand():
    ild = IntraListDiversity()
    same = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    orthogonal = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    ild.observe(same)
    ild.observe(orthogonal)
    ild.observe(orthogonal[:1])  # one item: no pairs, not counted
    assert ild.n == 2
    assert ild.value == pytest.approx(0.5)
    three = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    # Pairs: (0,1) sim 0, (0,2) sim -1, (1,2) sim 0 -> mean sim -1/3.
    assert IntraListDiversity.of(three) == pytest.approx(1 + 1 / 3)


def test_rating_metrics_by_hand():
    m = RatingMetrics()
    for predicted, actual in [(3.5, 4.0), (2.0, 1.0), (5.0, 5.0)]:
        m.observe(predicted, actual)
    assert m.mae == pytest.approx(0.5)
    assert m.rmse == pytest.approx(math.sqrt((0.25 + 1.0) / 3))


def test_metric_set_shape_and_values():
    ms = MetricSet(ks=(10, 20))
    ms.observe(Observation(list(range(20)), rank=3, auc=0.9, diversity={10: 0.4, 20: 0.5}, rating=(4.0, 3.0)))
    ms.observe(Observation(list(range(5, 25)), rank=15, auc=0.7, diversity={10: 0.6, 20: None}))
    r = ms.result(n_items=50)
    for key in ("hr", "ndcg", "mrr", "recall", "precision", "f1", "coverage", "diversity"):
        assert f"{key}@10" in r and f"{key}@20" in r
    assert r["hr@10"] == 0.5 and r["hr@20"] == 1.0
    assert r["auc"] == pytest.approx(0.8)
    assert r["coverage@10"] == pytest.approx(len(set(range(10)) | set(range(5, 15))) / 50)
    assert r["coverage@20"] == pytest.approx(25 / 50)
    assert r["diversity@10"] == pytest.approx(0.5)
    assert r["diversity@20"] == pytest.approx(0.5)
    assert r["mae"] == 1.0 and r["rmse"] == 1.0 and r["n_rated"] == 1
    assert r["n"] == 2


def test_rolling_hit_rate_window():
    live = RollingHitRate(window=3, k=2)
    assert live.hr == 0.0 and live.ndcg == 0.0
    assert live.observe(["a", "b", "c"], "a") == 1
    assert live.observe(["a", "b", "c"], "c") is None  # beyond k
    assert live.observe(["a", "b"], "b") == 2
    assert live.hr == pytest.approx(2 / 3)
    assert live.ndcg == pytest.approx((1 + 1 / math.log2(3)) / 3)
    live.observe(["x"], "y")  # the first hit leaves the window
    assert live.hr == pytest.approx(1 / 3)
    assert live.n == 3 and live.total == 4
    with pytest.raises(ValueError):
        RollingHitRate(window=0)


def test_replay_scorer_matches_latest_list_before_each_event():
    scorer = ReplayScorer(ks=(2,), cold_threshold=2)
    scorer.on_recommendation("ann", ["x", "y"], generated_at=10.0)
    scorer.on_recommendation("ann", ["y", "z"], generated_at=12.0)  # newer list replaces
    scorer.on_recommendation("ann", ["q", "r"], generated_at=11.0)  # older: ignored
    scorer.on_recommendation("bob", ["x"], generated_at=30.0)
    assert scorer.on_event("ann", "z", ts=13.0) == 2
    assert scorer.on_event("ann", "y", ts=14.0) is None  # the list was used: unscored
    assert scorer.on_event("bob", "x", ts=20.0) is None  # published after the event: unscored
    scorer.on_recommendation("ann", ["w"], generated_at=15.0)
    assert scorer.on_event("ann", "v", ts=16.0) is None  # scored, a miss
    result = scorer.result()
    assert result["all"]["n"] == 2
    assert result["all"]["hr@2"] == 0.5
    assert result["cold_users"]["n"] == 1  # ann's first event only
    assert result["cold_items"]["n"] == 2
    assert scorer.n_unscored == 2
