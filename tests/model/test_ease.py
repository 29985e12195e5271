from __future__ import annotations

import numpy as np
import pytest

from streamrec.model.cf.ease import EASE


def _baskets(rng: np.random.Generator, n_users: int = 60, n_items: int = 12) -> list[list[str]]:
    out = []
    for _ in range(n_users):
        size = int(rng.integers(2, 6))
        out.append([f"i{j}" for j in rng.choice(n_items, size=size, replace=False)])
    return out


def _solve_directly(x: np.ndarray, c: np.ndarray, l2: float, beta: float) -> np.ndarray:
    """The constrained minimizer read plainly: each column j a ridge regression on the other items,
    pulled towards column j of `c`, with B_jj = 0."""
    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        xo = x[:, others]
        a = xo.T @ xo + (l2 + beta) * np.eye(n - 1)
        rhs = xo.T @ x[:, j] + beta * c[others, j]
        b[others, j] = np.linalg.solve(a, rhs)
    return b


def test_weights_are_the_constrained_minimizer_with_and_without_text() -> None:
    rng = np.random.default_rng(0)
    baskets = _baskets(rng)
    items = sorted({i for b in baskets for i in b}, key=lambda s: int(s[1:]))
    texts = {i: rng.normal(size=4).astype(np.float32) for i in items}
    for weight in (0.0, 0.7):
        model = EASE(text_weight=weight, l2=3.0)
        model.fit(baskets, texts)
        order = model.items
        x = np.zeros((len(baskets), len(order)))
        for u, basket in enumerate(baskets):
            for i in basket:
                x[u, order.index(i)] = 1.0
        t = np.stack([texts[i] / np.linalg.norm(texts[i]) for i in order]).astype(np.float64)
        k = np.linalg.inv(t.T @ t + np.trace(t.T @ t) / t.shape[1] * np.eye(t.shape[1]))
        c = (t @ k @ t.T) / (1.0 - np.einsum("nd,de,ne->n", t, k, t))[None, :]
        np.fill_diagonal(c, 0.0)
        expected = _solve_directly(x, c, 3.0, weight * 3.0)
        got = np.stack([model.scores([i], order)[0] for i in order])
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_an_item_nobody_took_scores_as_if_fitted_with_an_empty_column() -> None:
    rng = np.random.default_rng(1)
    baskets = _baskets(rng)
    items = sorted({i for b in baskets for i in b})
    texts = {i: rng.normal(size=4).astype(np.float32) for i in [*items, "new"]}
    model = EASE(text_weight=0.5, l2=2.0)
    model.fit(baskets, texts)
    cold, known = model.scores(["i1", "i2"], ["new"], texts["new"][None, :])
    assert known.tolist() == [True]
    # The same weights solved directly with the new item as one more column, of no takes.
    order = [*model.items, "new"]
    x = np.zeros((len(baskets), len(order)))
    for u, basket in enumerate(baskets):
        for i in basket:
            x[u, order.index(i)] = 1.0
    every = np.stack([texts[i] / np.linalg.norm(texts[i]) for i in texts]).astype(np.float64)
    k = np.linalg.inv(every.T @ every + np.trace(every.T @ every) / 4 * np.eye(4))
    t = np.stack([texts[i] / np.linalg.norm(texts[i]) for i in order]).astype(np.float64)
    c = (t @ k @ t.T) / (1.0 - np.einsum("nd,de,ne->n", t, k, t))[None, :]
    np.fill_diagonal(c, 0.0)
    b = _solve_directly(x, c, 2.0, 1.0)
    expected = b[order.index("i1"), -1] + b[order.index("i2"), -1]
    assert cold[0] == pytest.approx(expected, abs=1e-5)


def test_no_takes_in_common_no_score_and_an_item_without_text_is_unknown() -> None:
    model = EASE(text_weight=1.0)
    model.fit([["a", "b"], ["a", "b"], ["c"]], {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])})
    values, known = model.scores(["zzz"], ["a", "b"])
    assert not known.any() and not values.any()
    values, known = model.scores(["a"], ["b", "new"], np.zeros((2, 2), dtype=np.float32))
    assert known.tolist() == [True, False]
