"""Metric accumulators for recommendations scored against the events that follow them.

Every accumulator is pure and incremental: `observe` one list (or score) at a time,
read the running value at any moment. The offline prequential runner, the live
recommender worker and the replay through Kafka share them, so a metric means the same
thing wherever it is reported.

With one target item per event (next-item prediction), recall@K equals HR@K and
precision@K is HR@K / K; the general formulas below take a set of relevant items.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.base import FloatArray

__all__ = [
    "AUC",
    "Coverage",
    "IntraListDiversity",
    "MetricSet",
    "Observation",
    "RankingMetrics",
    "RatingMetrics",
    "SLICES",
    "rank_of",
    "slices_of",
]


#: The slices every report has: all events, events on cold items, events of cold users.
SLICES = ("all", "cold_items", "cold_users")


def slices_of(user_count: int, item_count: int, cold_threshold: int) -> list[str]:
    """The slices an event belongs to, from how many interactions its user and item had before it.

    >>> slices_of(user_count=0, item_count=9, cold_threshold=5)
    ['all', 'cold_users']
    """
    out = ["all"]
    if item_count < cold_threshold:
        out.append("cold_items")
    if user_count < cold_threshold:
        out.append("cold_users")
    return out


def rank_of(ranked: Sequence[Hashable], target: Hashable) -> int | None:
    """1-based position of `target` in `ranked`, or None when absent.

    >>> rank_of(["a", "b", "c"], "b"), rank_of(["a"], "z")
    (2, None)
    """
    for position, item in enumerate(ranked, start=1):
        if item == target:
            return position
    return None


class RankingMetrics:
    """HR, NDCG, MRR, recall, precision and F1 at several cut-offs, averaged over lists.

    Per list, with `hits` the relevant items among the first K and `R` the relevant set:
    HR = [hits > 0], recall = hits / |R|, precision = hits / K, F1 their harmonic mean,
    MRR = 1 / rank of the first hit, NDCG = DCG / ideal DCG with gain 1 / log2(rank + 1).

    Examples
    --------
    >>> m = RankingMetrics(ks=(1, 3))
    >>> m.observe(["a", "b", "c"], {"b"})
    >>> m.observe(["a", "b", "c"], {"z"})
    >>> r = m.result()
    >>> r["hr@1"], r["hr@3"], round(r["ndcg@3"], 4), r["mrr@3"], round(r["precision@3"], 4)
    (0.0, 0.5, 0.3155, 0.25, 0.1667)
    """

    NAMES = ("hr", "ndcg", "mrr", "recall", "precision", "f1")

    def __init__(self, ks: Sequence[int] = (10, 20)) -> None:
        self.ks = tuple(ks)
        self.n = 0
        self._sums = {k: dict.fromkeys(self.NAMES, 0.0) for k in self.ks}

    def observe(self, ranked: Sequence[Hashable], relevant: Collection[Hashable]) -> None:
        """Score one ranked list against the items that turned out to be relevant."""
        ranks = sorted(r for r in (rank_of(ranked, item) for item in relevant) if r is not None)
        self._add(ranks, len(relevant))

    def observe_rank(self, rank: int | None) -> None:
        """Score a list whose one relevant item sat at `rank` (1-based; None: absent)."""
        self._add([] if rank is None else [rank], 1)

    def _add(self, ranks: list[int], n_relevant: int) -> None:
        self.n += 1
        if n_relevant == 0:
            return
        for k in self.ks:
            within = [r for r in ranks if r <= k]
            sums = self._sums[k]
            if not within:
                continue
            hits = len(within)
            recall = hits / n_relevant
            precision = hits / k
            sums["hr"] += 1.0
            sums["recall"] += recall
            sums["precision"] += precision
            sums["f1"] += 2 * precision * recall / (precision + recall)
            sums["mrr"] += 1.0 / within[0]
            dcg = sum(1.0 / math.log2(r + 1) for r in within)
            ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_relevant, k) + 1))
            sums["ndcg"] += dcg / ideal

    def result(self) -> dict[str, float]:
        """`{"hr@10": ..., "ndcg@10": ..., ...}`; zeros before any list."""
        out = {}
        for k in self.ks:
            for name in self.NAMES:
                out[f"{name}@{k}"] = self._sums[k][name] / self.n if self.n else 0.0
        return out


class _Mean:
    """A running mean of per-event values; None before the first."""

    def __init__(self) -> None:
        self.n = 0
        self._sum = 0.0

    def observe_value(self, value: float) -> None:
        self.n += 1
        self._sum += value

    @property
    def value(self) -> float | None:
        return self._sum / self.n if self.n else None


class AUC(_Mean):
    """Area under the ROC curve from a positive's score against sampled negatives' scores.

    Per event: the share of negatives scored below the positive, ties counting half.

    Examples
    --------
    >>> auc = AUC()
    >>> _ = auc.observe(0.9, np.array([0.1, 0.5, 0.9, 1.0]))
    >>> auc.value
    0.625
    """

    @staticmethod
    def of(positive: float, negatives: npt.ArrayLike) -> float | None:
        """One event's value; None without negatives."""
        neg = np.asarray(negatives, dtype=np.float64)
        if neg.size == 0:
            return None
        return float(((neg < positive).sum() + 0.5 * (neg == positive).sum()) / neg.size)

    def observe(self, positive: float, negatives: npt.ArrayLike) -> float | None:
        value = self.of(positive, negatives)
        if value is not None:
            self.observe_value(value)
        return value


class Coverage:
    """Share of the catalog that appeared in at least one top-K list.

    Examples
    --------
    >>> cov = Coverage(k=2)
    >>> cov.observe(["a", "b", "c"]); cov.observe(["a", "d"])
    >>> cov.value(n_items=6)
    0.5
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.items: set[Hashable] = set()

    def observe(self, ranked: Sequence[Hashable]) -> None:
        self.items.update(ranked[: self.k])

    def value(self, n_items: int) -> float:
        return len(self.items) / n_items if n_items else 0.0


class IntraListDiversity(_Mean):
    """Mean pairwise dissimilarity `1 - cos` within a list, averaged over lists.

    Lists with fewer than two described items are not counted.

    Examples
    --------
    >>> ild = IntraListDiversity()
    >>> ild.observe(np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32))
    >>> round(ild.value, 4)
    0.6667
    """

    @staticmethod
    def of(vectors: FloatArray) -> float | None:
        """Diversity of one list of unit vectors; None with fewer than two."""
        n = len(vectors)
        if n < 2:
            return None
        sims = vectors @ vectors.T
        mean_sim = (float(sims.sum()) - float(np.trace(sims))) / (n * (n - 1))
        return 1.0 - mean_sim

    @staticmethod
    def of_prefixes(vectors: FloatArray, sizes: Sequence[int]) -> list[float | None]:
        """Diversity of the first `n` vectors, for each `n` in `sizes`; one product for all.

        >>> v = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
        >>> [None if d is None else round(d, 4) for d in IntraListDiversity.of_prefixes(v, [1, 2, 3])]
        [None, 0.0, 0.6667]
        """
        sims = vectors @ vectors.T
        out: list[float | None] = []
        for n in sizes:
            if n < 2:
                out.append(None)
                continue
            block = sims[:n, :n]
            out.append(1.0 - (float(block.sum()) - float(np.trace(block))) / (n * (n - 1)))
        return out

    def observe(self, vectors: FloatArray) -> None:
        value = self.of(vectors)
        if value is not None:
            self.observe_value(value)


class RatingMetrics:
    """Mean absolute and root mean squared error of predicted ratings.

    Examples
    --------
    >>> m = RatingMetrics()
    >>> m.observe(4.0, 5.0); m.observe(3.0, 1.0)
    >>> m.mae, round(m.rmse, 4)
    (1.5, 1.5811)
    """

    def __init__(self) -> None:
        self.n = 0
        self._abs = 0.0
        self._sq = 0.0

    def observe(self, predicted: float, actual: float) -> None:
        error = predicted - actual
        self.n += 1
        self._abs += abs(error)
        self._sq += error * error

    @property
    def mae(self) -> float | None:
        return self._abs / self.n if self.n else None

    @property
    def rmse(self) -> float | None:
        return math.sqrt(self._sq / self.n) if self.n else None


@dataclass
class Observation:
    """One recommendation list scored against the item the user interacted with next."""

    #: The list, best first, at least as long as the largest K.
    recommended: Sequence[Hashable]
    #: 1-based rank of the true item in `recommended`, None when absent.
    rank: int | None
    #: AUC of the true item against sampled negatives, when scored.
    auc: float | None = None
    #: Intra-list diversity of the top K, per K.
    diversity: Mapping[int, float | None] = field(default_factory=dict)
    #: `(predicted, actual)` rating, when the event has a rating and the recommender predicts one.
    rating: tuple[float, float] | None = None
    #: Share of the first K items close to something the user disliked (None: nothing disliked).
    disliked: float | None = None
    #: What the user made of the item: 1 rated it 4-5 (liked), 0 rated it 1-2 (panned), None else.
    verdict: int | None = None


class MetricSet:
    """Every metric of one recommender on one slice of events.

    Beside HR and the rest over all events, where the events carry ratings: **liked HR@K** and
    NDCG@K, over the events whose user rated the item 4-5 (what users went on to like), and the
    **panned-hit rate@K**, the share of the events rated 1-2 whose item was in the top K (a list
    that pushes what its user goes on to pan; lower is better).

    Examples
    --------
    >>> ms = MetricSet(ks=(2,))
    >>> ms.observe(Observation(["a", "b"], 2, 0.75, diversity={2: 0.5}, rating=(4.0, 5.0), verdict=1))
    >>> ms.observe(Observation(["a", "b"], rank=1, verdict=0))
    >>> r = ms.result(n_items=4)
    >>> r["hr@2"], r["mrr@2"], r["auc"], r["coverage@2"], r["diversity@2"], r["mae"], r["n"]
    (1.0, 0.75, 0.75, 0.5, 0.5, 1.0, 2)
    >>> r["liked_hr@2"], r["n_liked"], r["panned_hit@2"], r["n_panned"]
    (1.0, 1, 1.0, 1)
    """

    def __init__(self, ks: Sequence[int] = (10, 20)) -> None:
        self.ks = tuple(ks)
        self.ranking = RankingMetrics(self.ks)
        self.auc = AUC()
        self.coverage = {k: Coverage(k) for k in self.ks}
        self.diversity = {k: IntraListDiversity() for k in self.ks}
        self.rating = RatingMetrics()
        self.disliked = _Mean()
        self.liked = RankingMetrics(self.ks)
        self.panned = {k: _Mean() for k in self.ks}

    def observe(self, obs: Observation) -> None:
        self.ranking.observe_rank(obs.rank)
        if obs.verdict == 1:
            self.liked.observe_rank(obs.rank)
        elif obs.verdict == 0:
            for k in self.ks:
                self.panned[k].observe_value(1.0 if obs.rank is not None and obs.rank <= k else 0.0)
        if obs.auc is not None:
            self.auc.observe_value(obs.auc)
        for k in self.ks:
            self.coverage[k].observe(obs.recommended)
            value = obs.diversity.get(k)
            if value is not None:
                self.diversity[k].observe_value(value)
        if obs.rating is not None:
            self.rating.observe(*obs.rating)
        if obs.disliked is not None:
            self.disliked.observe_value(obs.disliked)

    def result(self, n_items: int) -> dict[str, Any]:
        """Metric name to value; None where the metric does not apply (e.g. no ratings)."""
        out: dict[str, Any] = {"n": self.ranking.n}
        out.update(self.ranking.result())
        out["auc"] = self.auc.value
        for k in self.ks:
            out[f"coverage@{k}"] = self.coverage[k].value(n_items)
            out[f"diversity@{k}"] = self.diversity[k].value
        out["mae"] = self.rating.mae
        out["rmse"] = self.rating.rmse
        out[f"disliked_neighbours@{self.ks[0]}"] = self.disliked.value
        out["n_rated"] = self.rating.n
        liked = self.liked.result()
        for k in self.ks:
            for name in ("hr", "ndcg"):
                out[f"liked_{name}@{k}"] = liked[f"{name}@{k}"] if self.liked.n else None
            out[f"panned_hit@{k}"] = self.panned[k].value
        out["n_liked"] = self.liked.n
        out["n_panned"] = self.panned[self.ks[0]].n
        return out
