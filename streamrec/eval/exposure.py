"""How much an item shown and not clicked should sink, measured on logged impressions.

For every candidate of every impression (in time order): how many earlier impressions of the
same user showed it without a click (0, 1, 2 or more), and whether it is clicked now. The click
rate at each count, and its odds against count 0, say what being passed over tells. Beside them,
the odds ratio streamrec's exposure model gives for the same pairs (`model.exposure`: the odds
that the user wants an item are multiplied by ``exp(-passed_over(n, attention))``), each pair at
the attention its user had at that moment, learned as the recommender learns it: by `Habits`,
from each user's takes after an impression (`UserProfile.show` and `UserProfile.take`).

Intervals resample users, as `uncertainty.bootstrap_intervals` does: a user's impressions share
their tastes, so they are drawn together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from streamrec.eval.interactions import Impression
from streamrec.model.base import DoubleArray
from streamrec.model.users.exposure import TAKE_IF_WANTED, Habits, passed_over
from streamrec.model.users.profile import UserProfile

__all__ = ["BUCKETS", "measure_exposure"]

#: Earlier impressions without a click, as counted: 0, 1, and 2 or more.
BUCKETS = ("0", "1", "2+")


def measure_exposure(
    impressions: Sequence[Impression], rounds: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Click rate and odds ratio by how often an item was shown to its user before without a click.

    Parameters
    ----------
    impressions
        The lists shown, in time order.
    rounds, level, seed
        The bootstrap over users behind each interval.

    Returns
    -------
    dict
        ``buckets``: per count (`BUCKETS`), the pairs (user, candidate) shown, their clicks, the
        click rate and the odds ratio against count 0, each with its interval; the exposure
        model's odds ratio (mean over the bucket's pairs) and the mean attention it used.

    Examples
    --------
    >>> shown = ("a", "b", "c")
    >>> lists = [Impression("u", float(t), shown, (clicked,)) for t, clicked in enumerate("abc")]
    >>> out = measure_exposure(lists, rounds=50)
    >>> [(b["count"], b["pairs"], b["clicks"]) for b in out["buckets"]]
    [('0', 4, 1), ('1', 4, 1), ('2+', 1, 1)]
    >>> out["buckets"][0]["model_odds_ratio"], out["buckets"][1]["model_odds_ratio"] < 1.0
    (1.0, True)
    """
    habits = Habits()
    profiles: dict[str, UserProfile] = {}
    passed: dict[str, dict[str, int]] = {}
    user_of: dict[str, int] = {}
    users: list[int] = []
    buckets: list[int] = []
    clicks: list[bool] = []
    factors: list[float] = []
    attentions: list[float] = []
    for impression in impressions:
        user = impression.user
        profile = profiles.get(user)
        if profile is None:
            profile = profiles[user] = UserProfile(user)
        before = passed.setdefault(user, {})
        attention = habits.of(*profile.list_takes)
        taken = set(impression.clicked)
        shown = list(dict.fromkeys(impression.shown))
        counts = np.array([before.get(item, 0) for item in shown], dtype=np.float64)
        code = user_of.setdefault(user, len(user_of))
        users.extend([code] * len(shown))
        buckets.extend(np.minimum(counts, len(BUCKETS) - 1).astype(int).tolist())
        clicks.extend(item in taken for item in shown)
        factors.extend(np.exp(-passed_over(counts, attention)).tolist())
        attentions.extend([attention] * len(shown))
        # Then shown to the user, who takes what they take (as the recommender learns it).
        profile.show(shown)
        for item in impression.clicked:
            from_list = profile.take(item, "click")
            if from_list is not None:
                habits.took(from_list)
        for item in shown:
            if item not in taken:
                before[item] = before.get(item, 0) + 1
    return _table(
        np.array(users, dtype=np.int64),
        np.array(buckets, dtype=np.int64),
        np.array(clicks, dtype=np.float64),
        np.array(factors),
        np.array(attentions),
        len(user_of),
        habits,
        rounds,
        level,
        seed,
    )


def _table(
    users: np.ndarray[Any, np.dtype[np.int64]],
    buckets: np.ndarray[Any, np.dtype[np.int64]],
    clicks: DoubleArray,
    factors: DoubleArray,
    attentions: DoubleArray,
    n_users: int,
    habits: Habits,
    rounds: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """The per-bucket figures, with intervals from one set of user resamples."""
    rng = np.random.default_rng(seed)
    weights = (
        rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=rounds).astype(np.float64)
        if n_users
        else np.zeros((rounds, 0))
    )
    alpha = (1.0 - level) / 2.0
    rates: list[DoubleArray] = []
    out: list[dict[str, Any]] = []
    for b, label in enumerate(BUCKETS):
        mask = buckets == b
        pairs = np.bincount(users[mask], minlength=n_users).astype(np.float64)
        taken = np.bincount(users[mask], weights=clicks[mask], minlength=n_users)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append((weights @ taken) / (weights @ pairs))
        n, k = int(mask.sum()), int(clicks[mask].sum())
        rate = k / n if n else None
        out.append(
            {
                "count": label,
                "pairs": n,
                "clicks": k,
                "users": int((pairs > 0).sum()),
                "click_rate": _round(rate, 6),
                "click_rate_interval": _interval(rates[b], alpha, 6),
                "odds_ratio": None,
                "odds_ratio_interval": None,
                "model_odds_ratio": _round(float(factors[mask].mean()) if n else None, 4),
                "mean_attention": _round(float(attentions[mask].mean()) if n else None, 4),
            }
        )
    base = out[0]["click_rate"]
    for b, row in enumerate(out):
        if row["click_rate"] is not None and base is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                row["odds_ratio"] = _round(float(_odds(np.float64(row["click_rate"])) / _odds(base)), 4)
                row["odds_ratio_interval"] = _interval(_odds(rates[b]) / _odds(rates[0]), alpha, 4)
    return {
        "definition": "per (user, candidate) shown, in time order: the earlier impressions of that user "
        "that showed the candidate without a click; click rate per count, odds ratio against count 0; "
        "model: mean of exp(-passed_over(count, attention)) over the same pairs, each at its user's "
        "attention then (learned by Habits from takes after an impression)",
        "buckets": out,
        "attention_prior_at_end": round(habits.prior(), 4),
        "take_if_wanted": TAKE_IF_WANTED,
        "n_pairs": len(users),
        "n_users": n_users,
        "rounds": rounds,
        "level": level,
        "resampled": "users",
    }


def _odds(p: Any) -> Any:
    """Odds of a rate (numpy: a rate of 1 gives infinite odds, dropped as undefined)."""
    return np.float64(1.0) * p / (1.0 - p)


def _interval(sample: DoubleArray, alpha: float, digits: int) -> list[float] | None:
    sample = np.asarray(sample, dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if not len(sample):
        return None
    return [
        round(float(np.quantile(sample, alpha)), digits),
        round(float(np.quantile(sample, 1 - alpha)), digits),
    ]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)
