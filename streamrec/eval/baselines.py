"""Reference recommenders for the prequential protocol: popularity, chance, and a batch peer.

``popular`` and ``recent_popular`` are what any recommender must beat; ``random`` is what
knowing nothing scores. ``als`` is a
well-known batch model (implicit's alternating least squares, Hu, Koren and Volinsky
2008) under the same protocol: retrained on all events so far every `retrain_every`
events, with each user's factors solved from their latest history at every request
(the standard fold-in), so it is as fresh as a batch model can be.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.eval.base import StreamRecommender
from streamrec.eval.interactions import Interaction
from streamrec.model.base import DoubleArray, FloatArray

__all__ = ["ImplicitALS", "Popular", "Random", "RecentPopular"]


class _Counts(StreamRecommender):
    def __init__(self) -> None:
        super().__init__()
        self.counts = np.zeros(1024, dtype=np.float64)

    def _grow(self, pos: int) -> None:
        if pos >= len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(max(pos + 1, len(self.counts)))])

    def scores(self, user: str) -> DoubleArray:
        n = self._state().n_items
        if n > len(self.counts):
            self._grow(n)
        return self.counts[:n]


class Popular(_Counts):
    """``popular``: items ranked by how many interactions they had so far.

    Examples
    --------
    >>> from streamrec.eval.stream import StreamState
    >>> state = StreamState(text_dim=1)
    >>> pop = Popular(); pop.start(state, {})
    >>> for user, item in [("a", "x"), ("b", "y"), ("c", "y")]:
    ...     _ = state.add_item(item); pop.learn(Interaction(user, item, 0.0), None)
    >>> [state.items[p] for p in pop.rank("d", 2, None)[0]]
    ['y', 'x']
    """

    name = "popular"
    description = "all-time interaction counts"

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        pos = self._state().add_item(event.item)
        self._grow(pos)
        self.counts[pos] += 1.0


class RecentPopular(_Counts):
    """``recent_popular``: interaction counts that halve every `half_life_events` events.

    Decay is counted in events, not seconds, so "recent" means the same share of the
    stream on a dataset of ten years and on one of a week.

    Examples
    --------
    >>> from streamrec.eval.stream import StreamState
    >>> state = StreamState(text_dim=1)
    >>> rp = RecentPopular(half_life_events=1); rp.start(state, {})
    >>> for user, item in [("a", "x"), ("b", "x"), ("c", "y")]:
    ...     _ = state.add_item(item); rp.learn(Interaction(user, item, 0.0), None)
    >>> [state.items[p] for p in rp.rank("d", 2, None)[0]]
    ['y', 'x']
    """

    name = "recent_popular"

    def __init__(self, half_life_events: float = 1000.0) -> None:
        super().__init__()
        self.half_life_events = half_life_events
        self.description = f"interaction counts decayed by half every {half_life_events:g} events"
        self._scale = 1.0  # counts are stored relative to a growing scale: O(1) per event

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        pos = self._state().add_item(event.item)
        self._grow(pos)
        self._scale *= 2.0 ** (1.0 / self.half_life_events)
        if self._scale > 1e100:
            self.counts /= self._scale
            self._scale = 1.0
        self.counts[pos] += self._scale

    def params(self) -> dict[str, Any]:
        return {"half_life_events": self.half_life_events}


class ImplicitALS(StreamRecommender):
    """``als``: implicit's AlternatingLeastSquares, retrained periodically on all events so far.

    Between retrains, item factors are fixed and each user's factors are solved from
    their current history as implicit's own solver does, with confidence `alpha` on
    each interaction (``(YᵀY + (α - 1) YₛᵀYₛ + λI) x = α Yₛᵀ1``); items first seen
    after the last retrain score lowest, users without history get popularity.

    Parameters
    ----------
    factors, regularization, alpha, iterations
        Passed to `implicit.cpu.als.AlternatingLeastSquares`.
    retrain_every
        Events between retrains (the first retrains come after 100, 200, 400, ... events).
    seed
        The model's random state.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        retrain_every: int = 2000,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.retrain_every = retrain_every
        self.seed = seed
        self.description = (
            f"implicit.als.AlternatingLeastSquares(factors={factors}, regularization={regularization}, "
            f"alpha={alpha}, iterations={iterations}), batch: retrained every {retrain_every} events "
            "on all events so far, user factors folded in per request"
        )
        self._users: dict[str, int] = {}
        self._history: dict[str, dict[int, None]] = {}
        self._rows: list[int] = []
        self._cols: list[int] = []
        self._n_events = 0
        self._next_train = min(100, retrain_every)
        self._item_factors: FloatArray | None = None
        self._gram: npt.NDArray[np.float64] | None = None
        self._popularity = np.zeros(0, dtype=np.float64)
        self.n_trains = 0

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        state = self._state()
        pos = state.add_item(event.item)
        user = self._users.setdefault(event.user, len(self._users))
        history = self._history.setdefault(event.user, {})
        if pos not in history:
            history[pos] = None
            self._rows.append(user)
            self._cols.append(pos)
        self._n_events += 1
        if self._n_events >= self._next_train:
            self._train(state.n_items)
            step = self.retrain_every if self._n_events >= self.retrain_every else self._n_events
            self._next_train = self._n_events + step

    def finish(self) -> None:
        """Retrain on everything learned: a held-out event is ranked by a model of all the rest."""
        if self._n_events:
            self._train(self._state().n_items)

    def _train(self, n_items: int) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from scipy.sparse import csr_matrix
        from threadpoolctl import threadpool_limits

        data = np.ones(len(self._rows), dtype=np.float32)
        matrix = csr_matrix((data, (self._rows, self._cols)), shape=(len(self._users), n_items))
        # implicit parallelizes itself; a multi-threaded BLAS underneath only contends with it.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit checks the BLAS threads before they are limited
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
            )
            model.fit(matrix, show_progress=False)
        factors = np.asarray(model.item_factors, dtype=np.float32)
        self._item_factors = factors
        self._gram = (factors.T @ factors).astype(np.float64)
        self._popularity = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        self.n_trains += 1

    def scores(self, user: str) -> DoubleArray:
        n = self._state().n_items
        out = np.full(n, -math.inf)
        factors = self._item_factors
        if factors is None:
            return out
        trained = len(factors)
        history = [p for p in self._history.get(user, {}) if p < trained]
        if not history:
            out[:trained] = self._popularity[:trained]
            return out
        ys = factors[history].astype(np.float64)
        assert self._gram is not None
        a = self._gram + (self.alpha - 1.0) * (ys.T @ ys) + self.regularization * np.eye(self.factors)
        b = self.alpha * ys.sum(axis=0)
        x = np.linalg.solve(a, b)
        out[:trained] = factors @ x
        return out

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "retrain_every": self.retrain_every,
            "n_trains": self.n_trains,
        }


class Random(StreamRecommender):
    """``random``: a seeded random score per user and item, whatever the stream says.

    A user's scores are drawn from a generator seeded with `seed` and the user's id, so asking
    again gives the same scores and changes no state; an item's score never changes as items
    are added.

    Examples
    --------
    >>> from streamrec.eval.stream import StreamState
    >>> state = StreamState(text_dim=1)
    >>> rnd = Random(seed=1); rnd.start(state, {})
    >>> for item in "abcd":
    ...     _ = state.add_item(item)
    >>> bool((rnd.scores("ann") == rnd.scores("ann")).all()), len(rnd.scores("ann"))
    (True, 4)
    >>> bool(rnd.scores("ann")[1] == rnd.score_items("ann", np.array([1]))[0])
    True
    """

    name = "random"

    def __init__(self, seed: int = 42) -> None:
        super().__init__()
        self.seed = seed
        self.description = f"uniform random scores, fixed per user and item (seed {seed})"

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        self._state().add_item(event.item)

    def scores(self, user: str) -> DoubleArray:
        rng = np.random.default_rng([self.seed, zlib.crc32(user.encode("utf-8"))])
        return rng.random(self._state().n_items)

    def params(self) -> dict[str, Any]:
        return {"seed": self.seed}


class BatchEASE(StreamRecommender):
    """``ease``: EASE (Steck 2019), the closed-form item-to-item model, retrained periodically.

    Retrained on every user's items so far every `retrain_every` events (the first after 100,
    200, 400, ... events), with the penalty set from the data (`model.ease.EASE`); a user is
    scored from their items at each request. Items outside the model (first taken after the
    last retrain) score lowest; users without history get popularity. `text_weight` > 0 pulls
    the weights towards what the items' texts say, as the hybrid's item model does.
    """

    name = "ease"

    def __init__(self, retrain_every: int = 2000, text_weight: float = 0.0, max_items: int = 5_000) -> None:
        super().__init__()
        from streamrec.model.cf.ease import EASE

        self.retrain_every = retrain_every
        self.model = EASE(text_weight=text_weight, max_items=max_items)
        self.description = (
            f"EASE (closed-form item-to-item ridge regression, penalty from the data, at most "
            f"{max_items:,} items), batch: retrained every {retrain_every} events on all events so far"
        )
        self._history: dict[str, dict[str, None]] = {}
        self._n_events = 0
        self._next_train = min(100, retrain_every)
        self._popularity: dict[str, int] = {}

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        self._state().add_item(event.item)
        self._history.setdefault(event.user, {})[event.item] = None
        self._popularity[event.item] = self._popularity.get(event.item, 0) + 1
        self._n_events += 1
        if self._n_events >= self._next_train:
            self._train()
            step = self.retrain_every if self._n_events >= self.retrain_every else self._n_events
            self._next_train = self._n_events + step

    def finish(self) -> None:
        if self._n_events:
            self._train()

    def _train(self) -> None:
        self.model.fit([list(items) for items in self._history.values()])

    def scores(self, user: str) -> DoubleArray:
        state = self._state()
        n = state.n_items
        out = np.full(n, -math.inf)
        if not self.model.fitted:
            return out
        history = list(self._history.get(user, {}))
        values, known = self.model.scores(history, state.items)
        if known.any():
            out[known] = values[known]
        else:
            counts = np.array([self._popularity.get(i, 0) for i in state.items], dtype=np.float64)
            out = np.where(counts > 0, counts, -math.inf)
        return out

    def params(self) -> dict[str, Any]:
        return {
            "retrain_every": self.retrain_every,
            "l2": round(self.model.fitted_l2, 3),
            "n_trains": self.model.n_fits,
            "max_items": self.model.max_items,
        }
