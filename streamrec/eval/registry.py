"""The recommenders an evaluation compares, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamrec.eval.adapters import CFAdapter, HybridAdapter, SharedCF, TextAdapter
from streamrec.eval.base import StreamRecommender
from streamrec.eval.baselines import ImplicitALS, Popular, RecentPopular
from streamrec.eval.sasrec import SASRec
from streamrec.model.cf import OnlineCF

__all__ = ["ABLATIONS", "RECOMMENDERS", "default_recommenders"]

#: Every recommender an evaluation can compare, in report order.
RECOMMENDERS = (
    "popular",
    "recent_popular",
    "cf",
    "text",
    "hybrid",
    "hybrid_no_text",
    "hybrid_no_opinions",
    "hybrid_clauses_apart",
    "als",
    "sasrec",
)

#: Compared only when asked for: they cost more than they tell in every run.
ABLATIONS = ("hybrid_clauses_apart",)

#: The hybrid with every signal read from text weighted 0.
NO_TEXT = {"w_text": 0.0, "w_recent": 0.0, "w_dislike": 0.0, "w_aspects": 0.0}


def default_recommenders(
    names: Sequence[str] | None = None,
    text_dim: int = 384,
    seed: int = 42,
    cf_params: Mapping[str, Any] | None = None,
    recommender_params: Mapping[str, Any] | None = None,
    batch_params: Mapping[str, Any] | None = None,
    sequence_params: Mapping[str, Any] | None = None,
) -> list[StreamRecommender]:
    """The recommenders a report compares, in report order; `names` picks a subset.

    ``hybrid`` is streamrec's recommender as the workers run it; ``hybrid_no_text`` the same
    with its text signals weighted 0; ``hybrid_no_opinions`` the same without review
    understanding (every review a like, no sentiment, dislikes or aspects), as streamrec
    ranked before; ``hybrid_clauses_apart`` the hybrid fed by a reader that encodes each
    clause of a review again on its own instead of pooling it from the review's one pass.
    """
    cf = dict(cf_params or {})
    shared = SharedCF(OnlineCF(seed=seed, **cf))
    plain: list[SharedCF] = []

    def plain_cf() -> SharedCF:
        if not plain:
            plain.append(SharedCF(OnlineCF(seed=seed, **cf), negatives=False))
        return plain[0]

    params = dict(recommender_params or {})

    def hybrid(name: str, cf_model: SharedCF, description: str, **extra: Any) -> HybridAdapter:
        return HybridAdapter(cf_model, text_dim, name=name, description=description, **{**params, **extra})

    factories: dict[str, Callable[[], StreamRecommender]] = {
        "popular": Popular,
        "recent_popular": RecentPopular,
        "cf": lambda: CFAdapter(shared),
        "text": TextAdapter,
        "hybrid": lambda: hybrid("hybrid", shared, ""),
        "hybrid_no_text": lambda: hybrid(
            "hybrid_no_text",
            shared,
            "the hybrid with its text signals (text, recent, dislike, aspects) at 0",
            **NO_TEXT,
        ),
        "hybrid_no_opinions": lambda: hybrid(
            "hybrid_no_opinions",
            plain_cf(),
            "the hybrid without review understanding: every review a like, no sentiment, dislikes or aspects",
            opinions=False,
        ),
        "hybrid_clauses_apart": lambda: hybrid(
            "hybrid_clauses_apart",
            shared,
            "the hybrid with each review clause encoded again on its own (one more encoder sequence "
            "per clause) instead of pooled from the review's one pass",
            reading="apart",
        ),
        "als": lambda: ImplicitALS(seed=seed, **dict(batch_params or {})),
        "sasrec": lambda: SASRec(seed=seed, **dict(sequence_params or {})),
    }
    chosen = list(names) if names else [n for n in factories if n not in ABLATIONS]
    unknown = [n for n in chosen if n not in factories]
    if unknown:
        raise ValueError(f"recommenders must be among {', '.join(factories)}, got {unknown!r}")
    return [factories[n]() for n in chosen]
