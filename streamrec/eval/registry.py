"""The recommenders an evaluation compares, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamrec.eval.adapters import CFAdapter, HybridAdapter, SharedCF, TextAdapter
from streamrec.eval.base import StreamRecommender
from streamrec.eval.baselines import ImplicitALS, Popular, RecentPopular
from streamrec.model.cf import OnlineCF

__all__ = ["RECOMMENDERS", "default_recommenders"]

#: Every recommender an evaluation can compare, in report order.
RECOMMENDERS = ("popular", "recent_popular", "cf", "text", "hybrid", "als")


def default_recommenders(
    names: Sequence[str] | None = None,
    text_dim: int = 384,
    seed: int = 42,
    cf_params: Mapping[str, Any] | None = None,
    recommender_params: Mapping[str, Any] | None = None,
    batch_params: Mapping[str, Any] | None = None,
) -> list[StreamRecommender]:
    """The recommenders a report compares, in report order; `names` picks a subset."""
    shared = SharedCF(OnlineCF(seed=seed, **dict(cf_params or {})))
    factories: dict[str, Callable[[], StreamRecommender]] = {
        "popular": Popular,
        "recent_popular": RecentPopular,
        "cf": lambda: CFAdapter(shared),
        "text": TextAdapter,
        "hybrid": lambda: HybridAdapter(shared, text_dim, **dict(recommender_params or {})),
        "als": lambda: ImplicitALS(seed=seed, **dict(batch_params or {})),
    }
    chosen = list(names) if names else list(factories)
    unknown = [n for n in chosen if n not in factories]
    if unknown:
        raise ValueError(f"recommenders must be among {', '.join(factories)}, got {unknown!r}")
    return [factories[n]() for n in chosen]
