"""The river `BiasedMF` models under `OnlineCF`, and what is read from them: scores and retrieval rows."""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable

import numpy as np
import numpy.typing as npt
from river import optim, reco

from streamrec.model.base import FloatArray

__all__ = [
    "implicit_model",
    "interaction",
    "item_row",
    "item_rows",
    "rating_model",
    "start_latent",
    "user_row",
    "vector_size",
]


def vector_size(n_factors: int) -> int:
    """Numbers in a CF retrieval vector: the factors, and the item bias (a user's is 1)."""
    return n_factors + 1


def implicit_model(n_factors: int, lr: float, l2: float, seed: int) -> reco.BiasedMF:
    """Interactions as positives against sampled negatives, with the logistic loss."""
    return reco.BiasedMF(
        n_factors=n_factors,
        bias_optimizer=optim.SGD(lr),
        latent_optimizer=optim.SGD(lr),
        loss=optim.losses.Log(),
        weight_initializer=optim.initializers.Zeros(),
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed),
        l2_bias=0.0,
        l2_latent=l2,
    )


def rating_model(n_factors: int, lr: float, seed: int) -> reco.BiasedMF:
    """Ratings, with the squared loss; its biases learn at half the rate of its factors."""
    return reco.BiasedMF(
        n_factors=n_factors,
        bias_optimizer=optim.SGD(lr / 2),
        latent_optimizer=optim.SGD(lr),
        weight_initializer=optim.initializers.Zeros(),
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed),
        l2_bias=0.0,
        l2_latent=0.0,
    )


def interaction(model: reco.BiasedMF, user: Hashable, item: Hashable) -> float:
    """`p_u . q_i`, read without adding the user or the item (0 unless both are known)."""
    u = model.u_latents.get(user)
    q = model.i_latents.get(item)
    if u is not None and q is not None:
        return float(np.dot(u, q))
    return 0.0


def start_latent(item: Hashable, n_factors: int) -> npt.NDArray[np.float64]:
    """An item's first factors, derived from its id alone, so that every worker starts it alike."""
    rng = np.random.default_rng(zlib.crc32(str(item).encode()))
    return rng.normal(0.0, 0.1, n_factors)


def user_row(model: reco.BiasedMF, user: Hashable, n_factors: int) -> FloatArray | None:
    """`[p_u, 1]`, or None for a user the model does not know."""
    latent = model.u_latents.get(user)
    if latent is None:
        return None
    out = np.empty(vector_size(n_factors), dtype=np.float32)
    out[:-1] = latent
    out[-1] = 1.0
    return out


def item_row(model: reco.BiasedMF, item: Hashable) -> FloatArray:
    """`[q_i, b_i]` of an item the model knows."""
    return np.append(model.i_latents[item], model.i_biases[item]).astype(np.float32)


def item_rows(model: reco.BiasedMF, items: Iterable[Hashable], n_factors: int) -> FloatArray:
    """Rows `[q_i, b_i]`; unknown items get zeros (no score but their absence)."""
    latents, biases = model.i_latents, model.i_biases
    rows = []
    zeros = np.zeros(n_factors, dtype=np.float32)
    for item in items:
        rows.append(np.append(latents.get(item, zeros), biases.get(item, 0.0)))
    if not rows:
        return np.zeros((0, vector_size(n_factors)), dtype=np.float32)
    return np.asarray(rows, dtype=np.float32)
