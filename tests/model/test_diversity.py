"""MMR for a batch of users gives each the list it gives them one at a time."""

from __future__ import annotations

import numpy as np

from streamrec.model.ranking.diversity import mmr, mmr_many


def _user(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    text = rng.normal(size=(n, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return rng.normal(size=n), text, rng.random(n) > 0.3, rng.normal(size=(n, 5)).astype(np.float32)


def _one_at_a_time(
    relevance: np.ndarray,
    text_vecs: np.ndarray,
    has_text: np.ndarray,
    cf_vecs: np.ndarray,
    k: int,
    lam: float,
) -> list[int]:
    """MMR for one user as it was computed before users were batched: the oracle."""
    k = min(k, len(relevance))
    if lam >= 1.0 or k <= 1:
        return [int(j) for j in np.argsort(-relevance, kind="stable")[:k]]
    pool = np.argsort(-relevance, kind="stable")[: max(3 * k, 30)]
    rel = relevance[pool]
    spread = rel.max() - rel.min()
    rel = (rel - rel.min()) / spread if spread > 0 else np.ones_like(rel)
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


def test_a_batch_gives_each_user_the_list_mmr_gives_them_alone() -> None:
    rng = np.random.default_rng(3)
    # Users with many candidates, fewer than the list, one, and none.
    users = [_user(rng, n) for n in (120, 45, 7, 1, 0, 30)]
    relevance, text, has_text, cf = (list(column) for column in zip(*users, strict=True))
    batched = mmr_many(relevance, text, has_text, cf, k=10, lam=0.7)
    alone = [mmr(*user, k=10, lam=0.7) for user in users]
    assert batched == alone == [_one_at_a_time(*user, k=10, lam=0.7) for user in users]
    assert [len(order) for order in batched] == [10, 10, 7, 1, 0, 10]
    # Diversity changes the order somewhere (else the comparison says little).
    assert any(
        order != [int(j) for j in np.argsort(-u[0], kind="stable")[:10]] for order, u in zip(alone, users)
    )
    assert mmr_many([], [], [], [], k=10, lam=0.7) == []
