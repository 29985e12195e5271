"""How sure a figure is: bootstrap confidence intervals over users, for every recommender and ratio.

Events of one user are not independent (the same tastes, the same history), so users, not
events, are resampled: each of `rounds` resamples draws as many users as there are, with
replacement, and a metric is recomputed over all events of the users drawn. The interval is
the central `level` share of those recomputed values (percentile bootstrap). A ratio of two
recommenders is recomputed on the same resample, so what they share cancels out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.base import DoubleArray

__all__ = ["bootstrap_intervals", "seed_spread"]


def bootstrap_intervals(
    users: Sequence[str],
    values: Mapping[str, Mapping[str, DoubleArray]],
    masks: Mapping[str, npt.NDArray[np.bool_]],
    ratios: Sequence[tuple[str, str]] = (),
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Intervals of the mean of each per-event value, per recommender and slice.

    Parameters
    ----------
    users
        The user of each scored event.
    values
        Recommender -> metric name -> per-event value (e.g. 1 for a hit at 10); NaN where an
        event does not count for that metric (e.g. liked HR over the events rated 1-2).
    masks
        Slice name -> which events belong to it.
    ratios
        `(a, b)` pairs of recommenders whose ratio of means gets an interval too.

    Examples
    --------
    >>> users = ["a", "a", "b", "c"]
    >>> x, y = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.0])
    >>> hits = {"x": {"hr@10": x}, "y": {"hr@10": y}}
    >>> out = bootstrap_intervals(users, hits, {"all": np.ones(4, dtype=bool)}, [("x", "y")], rounds=200)
    >>> lo, hi = out["recommenders"]["x"]["all"]["hr@10"]
    >>> 0.0 <= lo <= 0.5 <= hi <= 1.0
    True
    """
    rng = np.random.default_rng(seed)
    ids, codes = np.unique(np.asarray(users, dtype=object), return_inverse=True)
    n_users = len(ids)
    # Each row: how often each user is drawn in one resample.
    weights = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=rounds).astype(np.float64)
    alpha = (1.0 - level) / 2.0
    out: dict[str, Any] = {
        "rounds": rounds,
        "level": level,
        "resampled": "users",
        "recommenders": {},
        "ratios": {},
    }
    means: dict[tuple[str, str, str], DoubleArray] = {}
    for name, metrics in values.items():
        per_slice: dict[str, dict[str, list[float] | None]] = {}
        for slice_name, mask in masks.items():
            per_metric: dict[str, list[float] | None] = {}
            for metric, per_event in metrics.items():
                value = np.asarray(per_event, dtype=np.float64)
                counted = mask & ~np.isnan(value)
                counts = np.bincount(codes[counted], minlength=n_users).astype(np.float64)
                sums = np.bincount(codes[counted], weights=value[counted], minlength=n_users)
                with np.errstate(invalid="ignore", divide="ignore"):
                    sample = (weights @ sums) / (weights @ counts)
                sample = sample[np.isfinite(sample)]
                means[(name, slice_name, metric)] = sample
                per_metric[metric] = (
                    [
                        round(float(np.quantile(sample, alpha)), 6),
                        round(float(np.quantile(sample, 1 - alpha)), 6),
                    ]
                    if len(sample)
                    else None
                )
            per_slice[slice_name] = per_metric
        out["recommenders"][name] = per_slice
    for a, b in ratios:
        for slice_name in masks:
            for metric in values.get(a, {}):
                num, den = means.get((a, slice_name, metric)), means.get((b, slice_name, metric))
                if num is None or den is None or len(num) != len(den) or not len(num):
                    continue
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = num / den
                ratio = ratio[np.isfinite(ratio)]
                if len(ratio):
                    key = f"{a}/{b}"
                    out["ratios"].setdefault(key, {}).setdefault(slice_name, {})[metric] = [
                        round(float(np.quantile(ratio, alpha)), 4),
                        round(float(np.quantile(ratio, 1 - alpha)), 4),
                    ]
    return out


def seed_spread(seeds: Sequence[int], runs: Sequence[Any], k: int = 10) -> dict[str, Any]:
    """Mean, least and greatest HR@k and NDCG@k of each recommender and slice over runs that differ
    only in their seed (tie order, sampled negatives, the models' own randomness)."""
    out: dict[str, Any] = {"seeds": list(seeds), "recommenders": {}}
    first = runs[0].recommenders
    for name, slices in first.items():
        per_slice: dict[str, Any] = {}
        for slice_name in slices:
            per_metric = {}
            for metric in (f"hr@{k}", f"ndcg@{k}"):
                values = [float(run.recommenders[name][slice_name][metric]) for run in runs]
                per_metric[metric] = {
                    "values": [round(v, 6) for v in values],
                    "mean": round(float(np.mean(values)), 6),
                    "min": round(min(values), 6),
                    "max": round(max(values), 6),
                    "std": round(float(np.std(values)), 6),
                }
            per_slice[slice_name] = per_metric
        out["recommenders"][name] = per_slice
    return out
