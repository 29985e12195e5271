"""The space text vectors are compared in: the encoder's, centred on the catalog, maybe projected.

Sentence encoders put every text in a narrow cone: any two items' cosine is high, and what sets
them apart is a small part of each vector. Taking the mean item vector away (centring, the first
step of whitening) lets cosines read that part. The mean is the running mean of the items' text
vectors, shrunk towards zero while few items are known (a catalog of one item is not centred on
itself); the vectors the index holds are mapped again when the mean has moved by more than
`tolerance` of its length (and a tenth more vectors were placed since), or when a learned
projection took `refresh` steps.
"""

from __future__ import annotations

import numpy as np

from streamrec.model.base import DoubleArray, FloatArray
from streamrec.model.text.projection import TextProjection

__all__ = ["TextSpace"]


class TextSpace:
    """Maps the encoder's vectors into the space the ranker compares them in.

    Parameters
    ----------
    dim
        The encoder's dimension.
    centre
        Take the catalog's mean vector away.
    projection
        A `TextProjection` learned from the stream, applied after centring (None: none).
    prior_items
        The mean is `sum / (n + prior_items)`: shrunk towards zero while few items are known.
    tolerance
        How far (relative to its length) the mean may move before the vectors are mapped again.
    refresh
        Steps of the projection between mappings.

    Examples
    --------
    >>> space = TextSpace(dim=2, prior_items=0)
    >>> for v in ([1.0, 0.2], [1.0, -0.2]):
    ...     space.add(None, np.array(v))
    >>> space.remap()
    >>> space.map(np.array([[1.0, 0.2], [1.0, -0.2]])).round(3).tolist()  # the shared part is gone
    [[0.0, 1.0], [0.0, -1.0]]
    """

    def __init__(
        self,
        dim: int,
        centre: bool = True,
        projection: TextProjection | None = None,
        prior_items: float = 10.0,
        tolerance: float = 0.05,
        refresh: int = 4,
    ) -> None:
        self.dim = dim
        self.centre = centre
        self.projection = projection
        self.prior_items = prior_items
        self.tolerance = tolerance
        self.refresh = refresh
        self._sum = np.zeros(dim)
        self._n = 0
        #: The mean the vectors are mapped with now.
        self.mean = np.zeros(dim)
        self._steps = 0
        self._n_at_remap = 0
        #: Times the vectors were mapped again.
        self.remaps = 0

    @property
    def identity(self) -> bool:
        """Whether the mapping changes nothing (no centring, no projection)."""
        return not self.centre and self.projection is None

    def add(self, old: FloatArray | DoubleArray | None, new: FloatArray | DoubleArray | None) -> None:
        """An item's text vector changed from `old` to `new` (None: it had none, has none now)."""
        if old is not None:
            self._sum -= np.asarray(old, dtype=np.float64)
            self._n -= 1
        if new is not None:
            self._sum += np.asarray(new, dtype=np.float64)
            self._n += 1

    def current_mean(self) -> DoubleArray:
        mean: DoubleArray = self._sum / (max(self._n, 0) + self.prior_items) if self._n > 0 else self._sum * 0
        return mean

    def stale(self) -> bool:
        """Whether the vectors should be mapped again: the mean moved, or the projection learned."""
        if self.projection is not None and self.projection.steps - self._steps >= self.refresh:
            return True
        if not self.centre or self._n - self._n_at_remap < max(1.0, 0.1 * self._n_at_remap):
            # Mapped again only once the vectors placed since grew by a tenth: a catalog loaded
            # item by item is mapped again a logarithmic number of times, not once per item.
            return False
        moved = float(np.linalg.norm(self.current_mean() - self.mean))
        return moved > self.tolerance * max(float(np.linalg.norm(self.mean)), 1e-3)

    def remap(self) -> None:
        """Map with the current mean and projection from now on (the caller maps the items again)."""
        if self.centre:
            self.mean = self.current_mean()
            self._n_at_remap = self._n
        if self.projection is not None:
            self._steps = self.projection.steps
        self.remaps += 1

    def map(self, vectors: FloatArray | DoubleArray) -> FloatArray:
        """Unit vectors of `vectors` (rows) in the ranker's space; rows of zeros stay zeros."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if self.identity:
            return x.astype(np.float32)
        zero = ~x.any(axis=1)
        if self.centre:
            x = x - self.mean
        if self.projection is not None:
            out = self.projection.project(x)
        else:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            out = (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        out[zero] = 0.0
        return out
