"""A linear map of the frozen encoder's space, learned online from what users take one after another.

Fine-tuning the encoder itself takes a GPU or hours of a CPU, and a batch job. A projection fits a
CPU and a stream: the encoder stays as it is, and a square matrix `W` (the identity at first, so
the projected space starts as the encoder's) learns from pairs the stream brings, the text vector
of a user's previous item and of the item they take next. Every `batch` pairs it takes one step of
the in-batch softmax that sentence-transformers' multiple negatives ranking loss uses: each
previous item, projected, should be nearer its own next item than every other next item of the
batch. A pull back towards the identity keeps it from forgetting what the encoder knew.
"""

from __future__ import annotations

import numpy as np

from streamrec.model.base import DoubleArray, FloatArray

__all__ = ["TextProjection"]


def _unit(x: DoubleArray) -> tuple[DoubleArray, DoubleArray]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms = np.where(norms > 0, norms, 1.0)
    return x / norms, norms


class TextProjection:
    """An online linear projection of text vectors, learned by in-batch softmax over item pairs.

    Parameters
    ----------
    dim
        Dimension of the encoder's vectors (the projection keeps it).
    batch
        Pairs per step (each pair's negatives are the batch's other next items).
    learning_rate
        Adam's step.
    temperature
        Of the softmax over cosines (sentence-transformers' default scale of 20 is 0.05).
    l2
        Pull of `W` back towards the identity, per step.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> proj = TextProjection(dim=4, batch=16, learning_rate=0.05)
    >>> proj.project(np.eye(4, dtype=np.float32)).round(2).tolist()[0]
    [1.0, 0.0, 0.0, 0.0]

    Items taken one after another share their first coordinates; the last two are noise the
    encoder reads into them. Learned, the projection brings pairs closer than the encoder did:

    >>> def pairs(n):
    ...     shared = rng.normal(size=(n, 2))
    ...     return (np.hstack([shared, rng.normal(size=(n, 2)) * 2]),
    ...             np.hstack([shared, rng.normal(size=(n, 2)) * 2]))
    >>> a, b = pairs(64)
    >>> def agreement(p):
    ...     return float((p.project(a) * p.project(b)).sum(axis=1).mean())
    >>> before = agreement(proj)
    >>> for _ in range(40):
    ...     prev, nxt = pairs(16)
    ...     for x, y in zip(prev, nxt): _ = proj.observe(x, y)
    >>> agreement(proj) > before + 0.2, proj.steps
    (True, 40)
    """

    def __init__(
        self,
        dim: int,
        batch: int = 64,
        learning_rate: float = 1e-3,
        temperature: float = 0.05,
        l2: float = 1e-3,
    ) -> None:
        self.dim = dim
        self.batch = batch
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.l2 = l2
        self.w = np.eye(dim)
        self._m = np.zeros((dim, dim))
        self._v = np.zeros((dim, dim))
        self._prev: list[DoubleArray] = []
        self._next: list[DoubleArray] = []
        #: Steps taken: the projection's version (vectors projected before a step are stale).
        self.steps = 0
        self.losses: list[float] = []

    def project(self, vectors: FloatArray | DoubleArray) -> FloatArray:
        """Unit vectors of `vectors` (rows) in the projected space; rows of zeros stay zeros."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        out, _ = _unit(x @ self.w)
        return out.astype(np.float32)

    def observe(self, previous: FloatArray | DoubleArray, taken: FloatArray | DoubleArray) -> bool:
        """One pair: the text vector of the user's previous item and of the item they took next.
        True when it completed a batch and the projection took a step."""
        self._prev.append(np.asarray(previous, dtype=np.float64))
        self._next.append(np.asarray(taken, dtype=np.float64))
        if len(self._prev) < self.batch:
            return False
        self.step(np.stack(self._prev), np.stack(self._next))
        self._prev, self._next = [], []
        return True

    def step(self, previous: DoubleArray, taken: DoubleArray) -> float:
        """One step of in-batch softmax on `previous[i]` -> `taken[i]`; the batch's loss."""
        pa, na = previous @ self.w, taken @ self.w
        a, a_norm = _unit(pa)
        b, b_norm = _unit(na)
        logits = a @ b.T / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        n = len(previous)
        loss = float(-np.log(np.maximum(p[np.arange(n), np.arange(n)], 1e-12)).mean())
        g = (p - np.eye(n)) / (n * self.temperature)  # d loss / d (a b')
        grad_a, grad_b = g @ b, g.T @ a
        # Back through the normalization: the part of each gradient along its vector goes.
        grad_a = (grad_a - a * (a * grad_a).sum(axis=1, keepdims=True)) / a_norm
        grad_b = (grad_b - b * (b * grad_b).sum(axis=1, keepdims=True)) / b_norm
        grad = previous.T @ grad_a + taken.T @ grad_b + self.l2 * (self.w - np.eye(self.dim))
        self.steps += 1
        self._m = 0.9 * self._m + 0.1 * grad
        self._v = 0.999 * self._v + 0.001 * grad * grad
        m_hat = self._m / (1 - 0.9**self.steps)
        v_hat = self._v / (1 - 0.999**self.steps)
        self.w -= self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
        self.losses.append(loss)
        return loss
