"""CF vectors generated from content: a new item takes part in collaborative ranking before its first take.

Collaborative filtering knows an item only once people take it; the encoder knows it from its
text at once. `ContentToCF` learns, online, a linear map from an item's text vector to its CF
vector (ridge regression, on the items CF has learned from takes), and gives an item the CF
vector its text predicts, blended out as its own takes arrive:

    cf(i) = a * learned(i) + (1 - a) * generated(i),    a = min(1, n / full_takes)

with `n` the item's interactions so far. An item CF never learned from has `a = 0`; from
`full_takes` interactions on, its own vector alone. Each item teaches the map with the same
weight `a`: a vector learned from one interaction says little about what the text means.

The regression keeps its sufficient statistics (`X^T W X` and `X^T W Y` over items, each item
once, with its latest text and CF vectors), so an update is two rank-one changes and a refit one
solve of a (text_dim + 1)-square system, done lazily after `refit_every` updates (and no more
than once per pass over the items it knows). An update that only moves an item's CF vector (CF
learns on every take) changes `X^T W Y` alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from streamrec.model.base import DoubleArray, FloatArray

__all__ = ["ContentToCF"]


class ContentToCF:
    """An online ridge regression from item text vectors to item CF vectors.

    Parameters
    ----------
    text_dim, cf_dim
        Dimensions of the text (input) and CF (output) vectors.
    l2
        Ridge penalty; the fit shrinks toward the mean CF vector (the intercept is not penalized).
    full_takes
        Interactions from which an item's learned CF vector is used alone.
    refit_every
        Updates between refits of the map (at least as many as the items it learns from).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=(8, 3))
    >>> model = ContentToCF(text_dim=8, cf_dim=3, l2=0.1, refit_every=1)
    >>> texts = rng.normal(size=(200, 8))
    >>> for n, (x, y) in enumerate(zip(texts, texts @ truth)):
    ...     model.observe(f"i{n}", x, y, takes=50)
    >>> new = rng.normal(size=(1, 8))
    >>> bool(np.allclose(model.generate(new), new @ truth, atol=0.1))
    True
    >>> model.blend(np.ones((1, 3)), np.zeros((1, 3)), np.array([5.0])).tolist()  # 5 of 10: half each
    [[0.5, 0.5, 0.5]]
    """

    def __init__(
        self,
        text_dim: int,
        cf_dim: int,
        l2: float = 1.0,
        full_takes: float = 10.0,
        refit_every: int = 256,
    ) -> None:
        self.text_dim = text_dim
        self.cf_dim = cf_dim
        self.l2 = l2
        self.full_takes = full_takes
        self.refit_every = refit_every
        d = text_dim + 1
        self._xx = np.zeros((d, d), dtype=np.float64)
        self._xy = np.zeros((d, cf_dim), dtype=np.float64)
        #: Per item: the (text with intercept, CF vector, weight) it teaches the map with now.
        self._pairs: dict[Hashable, tuple[DoubleArray, DoubleArray, float]] = {}
        self._weights: DoubleArray | None = None
        self._pending = 0
        #: Refits so far: a generated vector is stale once this moves on.
        self.fits = 0

    def __len__(self) -> int:
        """Items that teach the map."""
        return len(self._pairs)

    def share(self, takes: Any) -> Any:
        """How much an item's own learned vector weighs after `takes` interactions, in [0, 1]."""
        return np.clip(np.asarray(takes, dtype=np.float64) / self.full_takes, 0.0, 1.0)

    def observe(self, item: Hashable, text: FloatArray, cf: FloatArray, takes: float) -> None:
        """The item's current text and learned CF vectors, after `takes` interactions."""
        weight = float(self.share(takes))
        x = np.append(np.asarray(text, dtype=np.float64), 1.0)
        y = np.asarray(cf, dtype=np.float64)
        old = self._pairs.get(item)
        if old is not None and weight > 0.0 and old[2] == weight and np.array_equal(old[0], x):
            # Only the CF vector moved (the common case: CF learns on every take): X^T W X stands.
            self._xy += weight * np.outer(x, y - old[1])
            self._pairs[item] = (x, y, weight)
            self._pending += 1
            return
        if old is not None:
            del self._pairs[item]
            self._add(*old, sign=-1.0)
        if weight <= 0.0:
            return
        self._pairs[item] = (x, y, weight)
        self._add(x, y, weight, sign=1.0)

    def observe_many(
        self, items: Sequence[Hashable], texts: FloatArray, cfs: FloatArray, takes: Sequence[float]
    ) -> None:
        """`observe` for many items at once (rows of `texts` and `cfs`), in a few matrix products:
        the CF role publishes the vectors of every item it moved, often a thousand at a time.

        >>> a, b = ContentToCF(text_dim=2, cf_dim=1, l2=0.1), ContentToCF(text_dim=2, cf_dim=1, l2=0.1)
        >>> texts, cfs = np.eye(2), np.array([[1.0], [2.0]])
        >>> for n in range(2): a.observe(n, texts[n], cfs[n], takes=5)
        >>> b.observe_many([0, 1], texts, cfs, [5, 5])
        >>> np.allclose(a.generate(texts), b.generate(texts))
        True
        """
        weights = self.share(takes)
        x = np.hstack([np.asarray(texts, dtype=np.float64), np.ones((len(items), 1))])
        y = np.asarray(cfs, dtype=np.float64)
        last = {item: n for n, item in enumerate(items)}  # an item twice: its latest row
        moved_x, moved_dy, old_rows = [], [], []
        for item, n in last.items():
            old = self._pairs.get(item)
            weight = float(weights[n])
            if old is not None and weight > 0.0 and old[2] == weight and np.array_equal(old[0], x[n]):
                # Only the CF vector moved (the common case): X^T W X stands.
                moved_x.append(weight * x[n])
                moved_dy.append(y[n] - old[1])
                self._pairs[item] = (x[n], y[n], weight)
                continue
            if old is not None:
                del self._pairs[item]
                old_rows.append((old[0], old[1], -old[2]))
            if weight > 0.0:
                self._pairs[item] = (x[n], y[n], weight)
                old_rows.append((x[n], y[n], weight))
        if moved_x:
            self._xy += np.asarray(moved_x).T @ np.asarray(moved_dy)
        if old_rows:
            xs = np.asarray([r[0] for r in old_rows])
            ws = np.asarray([r[2] for r in old_rows])[:, None]
            self._xx += xs.T @ (ws * xs)
            self._xy += xs.T @ (ws * np.asarray([r[1] for r in old_rows]))
        self._pending += len(last)

    def forget(self, item: Hashable) -> None:
        """Stop learning from an item (withdrawn, or its vectors gone)."""
        old = self._pairs.pop(item, None)
        if old is not None:
            self._add(*old, sign=-1.0)

    def _add(self, x: DoubleArray, y: DoubleArray, weight: float, sign: float) -> None:
        self._xx += (sign * weight) * np.outer(x, x)
        self._xy += (sign * weight) * np.outer(x, y)
        self._pending += 1

    @property
    def ready(self) -> bool:
        """Whether the map has learned from any item."""
        return bool(self._pairs)

    def _fit(self) -> DoubleArray | None:
        if not self._pairs:
            return None
        # At most one refit per pass over the items the map knows: the cost stays flat per update.
        if self._weights is None or self._pending >= max(self.refit_every, len(self._pairs)):
            penalty = np.full(self.text_dim + 1, self.l2)
            penalty[-1] = 1e-6  # the intercept is not shrunk
            self._weights = np.asarray(
                np.linalg.solve(self._xx + np.diag(penalty), self._xy), dtype=np.float64
            )
            self._pending = 0
            self.fits += 1
        return self._weights

    def generate(self, texts: FloatArray) -> FloatArray | None:
        """The CF vectors the texts predict (rows), or None before the map learned anything."""
        weights = self._fit()
        if weights is None:
            return None
        x = np.asarray(texts, dtype=np.float64)
        out: FloatArray = (x @ weights[:-1] + weights[-1]).astype(np.float32)
        return out

    def blend(
        self, learned: FloatArray | None, generated: FloatArray, takes: Sequence[float] | FloatArray
    ) -> FloatArray:
        """Each item's CF vector: its learned one (None or NaN rows: none) blended with its generated one."""
        if learned is None:
            return generated.astype(np.float32)
        rows = np.asarray(learned, dtype=np.float64)
        missing = np.isnan(rows).any(axis=1)
        a = np.where(missing, 0.0, self.share(takes))[:, None]
        mixed: FloatArray = (a * np.nan_to_num(rows) + (1.0 - a) * generated).astype(np.float32)
        return mixed
