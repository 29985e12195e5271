"""Item-to-item weights in closed form (EASE), pulled towards what the items' texts say.

EASE (Steck, WWW 2019) learns a weight from every item to every other by ridge regression of each
item's column of the user-item matrix on the others': a user's score for an item is the sum of
the weights from the items they took. With text, the weights are regularized towards an
item-to-item matrix read from the texts alone (as L3AE, CIKM 2025, and MARec, RecSys 2024, do):

    B = argmin ||X - X B||^2 + l2 ||B||^2 + text_weight ||B - C||^2,    diag(B) = 0

    C = EASE of the items' unit text vectors T (the dimensions of the text space as its "users"):
        C_ij = t_i' K t_j / (1 - t_j' K t_j),   K = (text_l2 I + T'T)^-1

`C` is of low rank, so it is had for every item with a text, taken or not, without a matrix of
the whole catalog. With `G = X'X` over the items that were taken (the `max_items` most taken) and
`P = (G + (l2 + text_weight) I)^-1`:

    B = I + text_weight P C - P diag(d),   d_j = (1 + text_weight (P C)_jj) / P_jj

and, for an item nobody took yet (its column of `X` is empty), `B_.j = text_weight P C_.j`: the
weights from the items a user took to a new item are what its text says, passed through what the
takes say of those items. A user's score for it is `text_weight * (x_u P T K) t_j / (1 - t_j' K t_j)`,
a product in the text space. With `text_weight` 0 this is plain EASE.

`l2` is set from the data when not given: the mean item's number of takes (EASE's penalty is on
the scale of the counts; the published values, 200-1,000, sit near the mean item's count of their
datasets). `text_l2` likewise: the mean eigenvalue of `T'T`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt
from scipy import sparse

from streamrec.model.base import DoubleArray, FloatArray

__all__ = ["EASE", "Weights"]


@dataclass(frozen=True)
class Weights:
    """What a fit learned: the items weighed, each one's row, `B`, the text query `M` and `K` of
    the items taken, and `1 - t' K t` per item with a text (None: kept from the last fit)."""

    items: list[str]
    row: dict[str, int]
    b: FloatArray
    m: FloatArray
    k: DoubleArray
    delta: dict[str, float] | None
    l2: float


class EASE:
    """Closed-form item-to-item weights, with text as a prior for the items takes say little of.

    Parameters
    ----------
    text_weight
        How strongly the weights are pulled towards the text's item-to-item matrix, as a multiple
        of `l2` (0: plain EASE).
    l2
        Ridge penalty of the weights (None: the mean item's number of takes).
    max_items
        The most taken items the weights are learned for (the matrix inverted is this square);
        the others are scored by their text alone.

    Examples
    --------
    >>> baskets = [["tent", "stove"], ["tent", "stove"], ["tent", "lamp"], ["rod", "reel"]] * 5
    >>> model = EASE(text_weight=0.0)
    >>> model.fit(baskets)
    >>> scores = model.scores(["tent"], ["stove", "lamp", "reel"])[0]
    >>> bool(scores[0] > scores[1] > scores[2])
    True

    An item nobody took scores by what its text shares with the items the user took:

    >>> texts = {"tent": [1.0, 0.0], "stove": [0.8, 0.6], "lamp": [0.6, 0.8], "rod": [0.0, 1.0],
    ...          "reel": [0.0, 1.0], "tarp": [1.0, 0.1], "lure": [0.1, 1.0]}
    >>> model = EASE(text_weight=1.0)
    >>> model.fit(baskets, {k: np.array(v, dtype=np.float32) for k, v in texts.items()})
    >>> new = np.array([[1.0, 0.1], [0.1, 1.0]], dtype=np.float32)  # tarp, lure
    >>> values, known = model.scores(["tent"], ["tarp", "lure"], new)
    >>> bool(values[0] > values[1]), known.tolist()
    (True, [True, True])
    """

    def __init__(self, text_weight: float = 1.0, l2: float | None = None, max_items: int = 2_000) -> None:
        self.text_weight = text_weight
        self.l2 = l2
        self.max_items = max_items
        self.items: list[str] = []
        self._row: dict[str, int] = {}
        self._b = np.zeros((0, 0), dtype=np.float32)
        #: `P T_W K` times `text_weight`: a user's query into the text space, per item taken.
        self._m = np.zeros((0, 0), dtype=np.float32)
        self._k = np.zeros((0, 0), dtype=np.float64)
        #: `1 - t' K t` of each item with a text at the last fit.
        self._delta: dict[str, float] = {}
        self.fitted_l2 = 0.0
        self.n_fits = 0

    @property
    def fitted(self) -> bool:
        return bool(self.items)

    def fit(self, baskets: Iterable[Sequence[str]], texts: Mapping[str, FloatArray] | None = None) -> None:
        """Learn the weights from each user's items (`baskets`) and the items' unit text vectors."""
        self.install(self.solve(baskets, texts))

    def solve(
        self, baskets: Iterable[Sequence[str]], texts: Mapping[str, FloatArray] | None = None
    ) -> Weights | None:
        """The weights `fit` learns, without touching the model (None: nobody took anything):
        what a process of its own can compute, for `install` to put in place."""
        counts: dict[str, int] = {}
        rows: list[list[str]] = []
        for basket in baskets:
            items = list(dict.fromkeys(basket))
            if items:
                rows.append(items)
                for item in items:
                    counts[item] = counts.get(item, 0) + 1
        if not counts:
            return None
        kept = sorted(counts, key=lambda i: (-counts[i], i))[: self.max_items]
        position = {item: j for j, item in enumerate(kept)}
        n = len(kept)
        indices = [[position[i] for i in items if i in position] for items in rows]
        indptr = np.cumsum([0, *(len(c) for c in indices)])
        flat = np.fromiter((c for cols in indices for c in cols), dtype=np.int64, count=int(indptr[-1]))
        x = sparse.csr_matrix((np.ones(len(flat)), flat, indptr), shape=(len(rows), n))
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        l2 = self.l2 if self.l2 is not None else max(float(np.mean(np.diag(gram))), 1.0)
        beta = self.text_weight * l2
        a = gram + (l2 + beta) * np.eye(n)
        p = np.linalg.inv(a)
        text = _text_matrix(kept, texts) if texts and beta > 0 else None
        if text is not None:
            t_w, k, delta_w, delta = text
            pt = p @ t_w @ k  # (n, d)
            # C_WW = T_W K T_W' / delta_W is of rank d: P C_WW is had as (P T_W K) (T_W' / delta_W),
            # less its diagonal's part (C_WW's diagonal is emptied).
            pc = pt @ (t_w.T / delta_w[None, :])
            pc -= p * (((t_w @ k) * t_w).sum(axis=1) / delta_w)[None, :]
            d = (1.0 + beta * np.diag(pc)) / np.diag(p)
            b = np.eye(n) + beta * pc - p * d[None, :]
            m = (beta * pt).astype(np.float32)
        else:
            d = 1.0 / np.diag(p)
            b = np.eye(n) - p * d[None, :]
            m, k, delta = np.zeros((n, 0), dtype=np.float32), np.zeros((0, 0)), None
        np.fill_diagonal(b, 0.0)
        return Weights(kept, position, b.astype(np.float32), m, k, delta, l2)

    def install(self, weights: Weights | None) -> None:
        """Put weights `solve` learned in place (None: nothing to learn from, nothing changes)."""
        if weights is None:
            return
        self.items, self._row = weights.items, weights.row
        self._b, self._m, self._k = weights.b, weights.m, weights.k
        if weights.delta is not None:
            self._delta = weights.delta
        self.fitted_l2 = weights.l2
        self.n_fits += 1

    def scores(
        self, taken: Sequence[str], items: Sequence[str], texts: FloatArray | None = None
    ) -> tuple[DoubleArray, npt.NDArray[np.bool_]]:
        """A user's score for each of `items` from the items they `taken`, and which items have
        one: the weights learned for it, or (an item outside them, with a row in `texts`, its
        unit text vector or zeros) what its text says. Nothing where the user took none of the
        items the weights were learned for."""
        return self.scores_many([taken], items, np.array([0, len(items)]), texts)

    def scores_many(
        self,
        taken: Sequence[Sequence[str]],
        items: Sequence[str],
        bounds: npt.NDArray[np.int64],
        texts: FloatArray | None = None,
    ) -> tuple[DoubleArray, npt.NDArray[np.bool_]]:
        """`scores` for many users at once: user `u` took `taken[u]`, and its items are
        `items[bounds[u]:bounds[u + 1]]` (their texts the same rows of `texts`)."""
        out = np.zeros(len(items))
        known = np.zeros(len(items), dtype=bool)
        if not self.items or not len(items):
            return out, known
        position = self._row
        takes = [
            np.array([r for r in map(position.get, dict.fromkeys(t)) if r is not None], dtype=np.int64)
            for t in taken
        ]
        sizes = np.diff(bounds)
        owner = np.repeat(np.arange(len(sizes)), sizes)
        asked = np.array([len(rows) > 0 for rows in takes])[owner]  # the user took a weighed item
        cols = np.fromiter(map(position.get, items, repeat(-1)), dtype=np.int64, count=len(items))
        warm = (cols >= 0) & asked
        for u, rows in enumerate(takes):
            mine = np.flatnonzero(warm[bounds[u] : bounds[u + 1]]) + bounds[u]
            if len(mine):
                out[mine] = self._b[np.ix_(rows, cols[mine])].sum(axis=0)
        known[warm] = True
        cold = np.flatnonzero((cols < 0) & asked)
        if texts is None or not self._m.shape[1] or not len(cold):
            return out, known
        vectors = np.asarray(texts[cold], dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        has = norms > 0
        cold, unit = cold[has], vectors[has] / norms[has, None]
        queries = np.stack(
            [self._m[rows].sum(axis=0) if len(rows) else np.zeros(self._m.shape[1]) for rows in takes]
        ).astype(np.float64)
        delta = np.array([self._delta.get(items[j], np.nan) for j in cold])
        unknown = np.isnan(delta)
        if unknown.any():  # a text that came after the fit
            u = unit[unknown]
            delta[unknown] = 1.0 - ((u @ self._k) * u).sum(axis=1)
        out[cold] = np.einsum("nd,nd->n", unit, queries[owner[cold]]) / np.maximum(delta, 1e-6)
        known[cold] = True
        return out, known


def _text_matrix(
    kept: Sequence[str], texts: Mapping[str, FloatArray]
) -> tuple[DoubleArray, DoubleArray, DoubleArray, dict[str, float]]:
    """`T_W` (zeros for items without text), `K`, `1 - t' K t` of the kept items, and of every
    item with a text (for scoring the items outside the weights)."""
    ids = list(texts)
    every = np.stack([np.asarray(texts[i], dtype=np.float64) for i in ids])
    norms = np.linalg.norm(every, axis=1, keepdims=True)
    every = every / np.where(norms > 0, norms, 1.0)
    dim = every.shape[1]
    tt = every.T @ every
    text_l2 = max(float(np.trace(tt)) / dim, 1e-6)
    k = np.linalg.inv(tt + text_l2 * np.eye(dim))
    delta = dict(zip(ids, np.maximum(1.0 - ((every @ k) * every).sum(axis=1), 1e-6).tolist(), strict=True))
    t_w = np.zeros((len(kept), dim))
    delta_w = np.ones(len(kept))
    for j, item in enumerate(kept):
        row = delta.get(item)
        if row is not None:
            vector = np.asarray(texts[item], dtype=np.float64)
            t_w[j] = vector / max(float(np.linalg.norm(vector)), 1e-12)
            delta_w[j] = row
    return t_w, k, delta_w, delta
