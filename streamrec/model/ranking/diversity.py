"""Maximal marginal relevance: a list that stays relevant and does not repeat itself."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamrec.model.base import FloatArray

__all__ = ["mmr"]


def mmr(
    relevance: npt.NDArray[np.float64],
    text_vecs: FloatArray,
    has_text: npt.NDArray[np.bool_],
    cf_vecs: FloatArray,
    k: int,
    lam: float,
) -> list[int]:
    """Positions of `k` candidates, chosen one at a time by `lam` x relevance less `1 - lam` x the
    most they resemble one already chosen (text vectors where both have text, else CF vectors less
    their bias); `lam` 1 keeps the relevance order.

    >>> rel = np.array([1.0, 0.99, 0.5])
    >>> vecs = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    >>> cf = np.zeros((3, 3), dtype=np.float32)
    >>> has = np.ones(3, dtype=bool)
    >>> mmr(rel, vecs, has, cf, 2, lam=1.0), mmr(rel, vecs, has, cf, 2, lam=0.5)
    ([0, 1], [0, 2])
    """
    n = len(relevance)
    k = min(k, n)
    if lam >= 1.0 or k <= 1:
        return [int(j) for j in np.argsort(-relevance, kind="stable")[:k]]
    # Pre-select by relevance: diversity is a re-ranking of the best candidates.
    pool = np.argsort(-relevance, kind="stable")[: max(3 * k, 30)]
    rel = relevance[pool]
    spread = rel.max() - rel.min()
    rel = (rel - rel.min()) / spread if spread > 0 else np.ones_like(rel)
    # Similarity in text space where both items have text, else in CF space.
    vecs = np.where(has_text[pool][:, None], text_vecs[pool], 0.0)
    cf = cf_vecs[pool, :-1]
    norms = np.linalg.norm(cf, axis=1, keepdims=True)
    cf = (cf / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    sim = np.where(np.outer(has_text[pool], has_text[pool]), vecs @ vecs.T, np.clip(cf @ cf.T, -1.0, 1.0))
    chosen: list[int] = []
    max_sim = np.full(len(pool), -1.0)
    for _ in range(k):
        score = lam * rel - (1 - lam) * np.maximum(max_sim, 0.0)
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        max_sim = np.maximum(max_sim, sim[best])
    return [int(pool[j]) for j in chosen]
