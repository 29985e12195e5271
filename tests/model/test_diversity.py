"""MMR for a batch of users gives each the list it gives them one at a time."""

from __future__ import annotations

import numpy as np

from streamrec.model.ranking.diversity import mmr, mmr_many


def _user(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    text = rng.normal(size=(n, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return rng.normal(size=n), text, rng.random(n) > 0.3, rng.normal(size=(n, 5)).astype(np.float32)


def test_a_batch_gives_each_user_the_list_mmr_gives_them_alone() -> None:
    rng = np.random.default_rng(3)
    # Users with many candidates, fewer than the list, one, and none.
    users = [_user(rng, n) for n in (120, 45, 7, 1, 0, 30)]
    relevance, text, has_text, cf = (list(column) for column in zip(*users, strict=True))
    batched = mmr_many(relevance, text, has_text, cf, k=10, lam=0.7)
    alone = [mmr(*user, k=10, lam=0.7) for user in users]
    assert batched == alone
    assert [len(order) for order in batched] == [10, 10, 7, 1, 0, 10]
    # Diversity changes the order somewhere (else the comparison says little).
    assert any(
        order != [int(j) for j in np.argsort(-u[0], kind="stable")[:10]] for order, u in zip(alone, users)
    )
    assert mmr_many([], [], [], [], k=10, lam=0.7) == []
