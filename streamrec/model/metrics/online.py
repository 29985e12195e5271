"""Scoring a running system's lists against what users did next: the workers' live hit rate, and a
replay's (`streamrec eval --through-kafka`), with the accumulators of `evaluation.py`."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from typing import Any

from streamrec.model.metrics.accumulators import SLICES, MetricSet, Observation, rank_of, slices_of

__all__ = ["OnlineScorer", "ReplayScorer", "RollingHitRate"]


class RollingHitRate:
    """HR@K and NDCG@K over the last `window` recommendations, for live monitoring.

    Parameters
    ----------
    window
        How many of the latest scored lists the rates are taken over.
    k
        The cut-off.

    Examples
    --------
    >>> live = RollingHitRate(window=2, k=2)
    >>> live.observe(["a", "b", "c"], "b")
    2
    >>> live.hr, round(live.ndcg, 4)
    (1.0, 0.6309)
    >>> live.observe(["a", "b"], "z"); live.observe(["a", "b"], "a")
    1
    >>> live.hr, live.n
    (0.5, 2)
    """

    def __init__(self, window: int = 1000, k: int = 10) -> None:
        if window <= 0 or k <= 0:
            raise ValueError(f"window and k must be positive, got {window!r} and {k!r}")
        self.window = window
        self.k = k
        self._hits: deque[tuple[float, float]] = deque()
        self._hr = 0.0
        self._ndcg = 0.0
        self.total = 0

    def observe(self, recommended_ids: Sequence[Hashable], true_item: Hashable) -> int | None:
        """Score one list against the item the user then interacted with; return its rank."""
        rank = rank_of(recommended_ids[: self.k], true_item)
        hit = 1.0 if rank is not None else 0.0
        gain = 1.0 / math.log2(rank + 1) if rank is not None else 0.0
        self._hits.append((hit, gain))
        self._hr += hit
        self._ndcg += gain
        if len(self._hits) > self.window:
            old_hit, old_gain = self._hits.popleft()
            self._hr -= old_hit
            self._ndcg -= old_gain
        self.total += 1
        return rank

    @property
    def n(self) -> int:
        return len(self._hits)

    @property
    def hr(self) -> float:
        return max(0.0, self._hr / len(self._hits)) if self._hits else 0.0

    @property
    def ndcg(self) -> float:
        return max(0.0, self._ndcg / len(self._hits)) if self._hits else 0.0


class OnlineScorer:
    """Scores the list last given to each user against the item they take next, as it happens.

    What a recommender worker exports as its online HR@10 and NDCG@10: `remember` each list
    sent, `observe` each interaction before it is learned.

    Parameters
    ----------
    window, k
        Of the `RollingHitRate` the scores go to.
    max_users
        Users whose last list is kept; the least recently served are dropped first.

    Examples
    --------
    >>> live = OnlineScorer(k=2)
    >>> live.observe("ann", "b")  # no list given yet
    False
    >>> live.remember("ann", ["a", "b"])
    >>> live.observe("ann", "b"), live.rates.hr
    (True, 1.0)
    """

    def __init__(self, window: int = 1000, k: int = 10, max_users: int = 100_000) -> None:
        self.rates = RollingHitRate(window=window, k=k)
        self.max_users = max_users
        self.lists: OrderedDict[Hashable, list[Hashable]] = OrderedDict()

    def observe(self, user: Hashable, item: Hashable) -> bool:
        """Score the user's last list against `item`; False if there is none."""
        last = self.lists.get(user)
        if last is None:
            return False
        self.rates.observe(last, item)
        return True

    def remember(self, user: Hashable, items: Sequence[Hashable]) -> None:
        lists = self.lists
        lists[user] = list(items)
        lists.move_to_end(user)
        if len(lists) > self.max_users:
            lists.popitem(last=False)

    def forget(self, user: Hashable) -> bool:
        """Drop the user's last list; True if there was one."""
        return self.lists.pop(user, None) is not None


class ReplayScorer:
    """Scores the recommendations a running system published against each user's next event.

    The latest list published for a user before an event of theirs is that event's
    prediction; a list is used once. Events are sliced like the offline report (cold
    items, cold users: fewer than `cold_threshold` earlier interactions).

    Examples
    --------
    >>> scorer = ReplayScorer(ks=(2,))
    >>> scorer.on_event("ann", "a", ts=1.0)  # nothing published yet: not scored
    >>> scorer.on_recommendation("ann", ["b", "c"], generated_at=1.5)
    >>> scorer.on_event("ann", "c", ts=2.0)
    2
    >>> res = scorer.result()
    >>> res["all"]["hr@2"], res["all"]["n"], scorer.n_unscored
    (1.0, 1, 1)
    """

    def __init__(self, ks: Sequence[int] = (10, 20), cold_threshold: int = 5) -> None:
        self.ks = tuple(ks)
        self.cold_threshold = cold_threshold
        self.slices = {name: MetricSet(self.ks) for name in SLICES}
        self._latest: dict[Hashable, tuple[Sequence[Hashable], float]] = {}
        self._user_n: dict[Hashable, int] = {}
        self._item_n: dict[Hashable, int] = {}
        self.n_unscored = 0

    def on_recommendation(self, user: Hashable, item_ids: Sequence[Hashable], generated_at: float) -> None:
        current = self._latest.get(user)
        if current is None or generated_at >= current[1]:
            self._latest[user] = (list(item_ids), generated_at)

    def on_event(self, user: Hashable, item: Hashable, ts: float) -> int | None:
        """Score the user's latest list published before `ts`; return the item's rank."""
        latest = self._latest.get(user)
        rank = None
        if latest is not None and latest[1] <= ts:
            del self._latest[user]
            rank = rank_of(latest[0], item)
            obs = Observation(latest[0], rank)
            for name in self.slices_of(user, item):
                self.slices[name].observe(obs)
        else:
            self.n_unscored += 1
        self._user_n[user] = self._user_n.get(user, 0) + 1
        self._item_n[item] = self._item_n.get(item, 0) + 1
        return rank

    def slices_of(self, user: Hashable, item: Hashable) -> list[str]:
        return slices_of(self._user_n.get(user, 0), self._item_n.get(item, 0), self.cold_threshold)

    def result(self) -> dict[str, dict[str, Any]]:
        n_items = len(self._item_n)
        return {name: metrics.result(n_items) for name, metrics in self.slices.items()}
