"""Maximal marginal relevance: a list that stays relevant and does not repeat itself."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamrec.model.base import FloatArray

__all__ = ["mmr", "mmr_many"]


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
    return mmr_many([relevance], [text_vecs], [has_text], [cf_vecs], k, lam)[0]


def mmr_many(
    relevances: Sequence[npt.NDArray[np.float64]],
    text_vecs: Sequence[FloatArray],
    has_text: Sequence[npt.NDArray[np.bool_]],
    cf_vecs: Sequence[FloatArray],
    k: int,
    lam: float,
) -> list[list[int]]:
    """`mmr` for many users' candidates at once: each user's best candidates padded into one
    array, chosen a step at a time for all users together."""
    if lam >= 1.0 or k <= 1 or not relevances:
        return [[int(j) for j in np.argsort(-r, kind="stable")[:k]] for r in relevances]
    if any(len(r) == 0 for r in relevances):  # nothing to choose from: an empty list
        live = [u for u, r in enumerate(relevances) if len(r)]
        found = mmr_many(
            [relevances[u] for u in live],
            [text_vecs[u] for u in live],
            [has_text[u] for u in live],
            [cf_vecs[u] for u in live],
            k,
            lam,
        )
        lists: list[list[int]] = [[] for _ in relevances]
        for u, order in zip(live, found, strict=True):
            lists[u] = order
        return lists
    # Pre-select by relevance: diversity is a re-ranking of the best candidates.
    pools = [np.argsort(-r, kind="stable")[: max(3 * k, 30)] for r in relevances]
    users = len(pools)
    sizes = np.array([len(p) for p in pools])
    width = int(sizes.max())
    present = np.arange(width)[None, :] < sizes[:, None]
    rel = np.zeros((users, width))
    vecs = np.zeros((users, width, text_vecs[0].shape[1]), dtype=np.float32)
    has = np.zeros((users, width), dtype=bool)
    cf = np.zeros((users, width, cf_vecs[0].shape[1] - 1), dtype=np.float32)
    for u, pool in enumerate(pools):
        r = relevances[u][pool]
        spread = r.max() - r.min()
        rel[u, : len(pool)] = (r - r.min()) / spread if spread > 0 else 1.0
        has[u, : len(pool)] = has_text[u][pool]
        vecs[u, : len(pool)] = np.where(has_text[u][pool][:, None], text_vecs[u][pool], 0.0)
        cf[u, : len(pool)] = cf_vecs[u][pool, :-1]
    norms = np.linalg.norm(cf, axis=2, keepdims=True)
    cf = (cf / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    # Similarity in text space where both items have text, else in CF space.
    both = has[:, :, None] & has[:, None, :]
    sim = np.where(both, vecs @ vecs.transpose(0, 2, 1), np.clip(cf @ cf.transpose(0, 2, 1), -1.0, 1.0))
    steps = np.minimum(k, sizes)
    chosen = np.zeros((users, k), dtype=np.int64)
    taken = ~present
    max_sim = np.full((users, width), -1.0)
    everyone = np.arange(users)
    for step in range(k):
        score = lam * rel - (1 - lam) * np.maximum(max_sim, 0.0)
        score[taken] = -np.inf
        best = np.argmax(score, axis=1)
        chosen[:, step] = best
        taken[everyone, best] = True
        max_sim = np.maximum(max_sim, sim[everyone, best])
    return [[int(pools[u][j]) for j in chosen[u, : steps[u]]] for u in range(users)]
