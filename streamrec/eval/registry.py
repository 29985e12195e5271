"""The recommenders an evaluation compares, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamrec.eval.adapters import CFAdapter, HybridAdapter, SharedCF, TextAdapter
from streamrec.eval.base import StreamRecommender
from streamrec.eval.baselines import BatchEASE, ImplicitALS, Popular, Random, RecentPopular
from streamrec.eval.sasrec import SASRec
from streamrec.model.cf.content import ContentToCF
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.text.opinion_parts import DEFAULT_PARTS, PARTS

__all__ = ["ABLATIONS", "PART_ROWS", "RECOMMENDERS", "alternate_rows", "default_recommenders"]


def _part_row(part: str) -> str:
    """The hybrid with one opinion part flipped: off when it is on by default, else on."""
    return f"hybrid_no_{part}" if part in DEFAULT_PARTS else f"hybrid_with_{part}"


#: The rows that flip one opinion part each, by part.
PART_ROWS = {part: _part_row(part) for part in PARTS}

#: Every recommender an evaluation can compare, in report order.
RECOMMENDERS = (
    "popular",
    "recent_popular",
    "random",
    "cf",
    "cf_content",
    "text",
    "hybrid",
    "hybrid_no_text",
    "hybrid_no_content_cf",
    "hybrid_no_opinions",
    *PART_ROWS.values(),
    "hybrid_projected",
    "hybrid_prior_blend",
    "hybrid_clauses_apart",
    "hybrid_impressions",
    "hybrid_impressions_no_cf",
    "als",
    "ease",
    "sasrec",
)

#: Compared only when asked for: they cost more than they tell in every run (``random`` is the
#: floor of the impressions protocol; over a whole catalog its top K is a hit by chance alone).
ABLATIONS = (
    "random",
    "hybrid_clauses_apart",
    "hybrid_impressions",
    "hybrid_impressions_no_cf",
    "hybrid_prior_blend",
    "hybrid_projected",
)

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

    ``hybrid`` is streamrec's recommender as the workers run it (the default opinion parts);
    ``hybrid_no_text`` the same with its text signals weighted 0; ``hybrid_no_opinions`` the
    same without review understanding (every review a like: no part of `opinion_parts.PARTS`);
    ``hybrid_no_<part>`` (``hybrid_with_<part>`` for a part off by default) the hybrid with that
    one part flipped; ``hybrid_clauses_apart`` the hybrid fed by a reader that encodes each
    clause of a review again on its own instead of pooling it from the review's one pass.
    """
    cf = dict(cf_params or {})
    # One CF model per way of learning a panned review, shared by every adapter that learns so.
    learned: dict[bool, SharedCF] = {}

    def cf_model(negatives: bool) -> SharedCF:
        if negatives not in learned:
            learned[negatives] = SharedCF(OnlineCF(seed=seed, **cf), negatives=negatives)
        return learned[negatives]

    params = dict(recommender_params or {})
    default = frozenset(DEFAULT_PARTS)

    def hybrid(name: str, description: str, parts: frozenset[str] = default, **extra: Any) -> HybridAdapter:
        return HybridAdapter(
            cf_model("cf_negatives" in parts),
            text_dim,
            name=name,
            description=description,
            **{**params, "opinions": parts, **extra},
        )

    def flipped(part: str) -> Callable[[], StreamRecommender]:
        on = part not in default
        parts = default | {part} if on else default - {part}
        what = PARTS[part]
        return lambda: hybrid(
            PART_ROWS[part], f"the hybrid {'with' if on else 'without'} one opinion part: {what}", parts
        )

    factories: dict[str, Callable[[], StreamRecommender]] = {
        "popular": Popular,
        "recent_popular": RecentPopular,
        "random": lambda: Random(seed=seed),
        "cf": lambda: CFAdapter(cf_model("cf_negatives" in default)),
        "cf_content": lambda: CFAdapter(
            cf_model("cf_negatives" in default),
            ContentToCF(text_dim, cf_model(True).model.vector_size),
            name="cf_content",
        ),
        "text": TextAdapter,
        "hybrid": lambda: hybrid("hybrid", ""),
        "hybrid_no_text": lambda: hybrid(
            "hybrid_no_text",
            "the hybrid with its text signals (text, recent, dislike, aspects) at 0",
            default,
            **NO_TEXT,
        ),
        "hybrid_no_content_cf": lambda: hybrid(
            "hybrid_no_content_cf",
            "the hybrid without CF vectors generated from content: a new item has none until CF learns it",
            default,
            content_cf=False,
        ),
        "hybrid_no_opinions": lambda: hybrid(
            "hybrid_no_opinions",
            "the hybrid without review understanding: every review a like (no part of reading reviews "
            "as opinions)",
            frozenset(),
        ),
        **{PART_ROWS[part]: flipped(part) for part in PARTS},
        "hybrid_projected": lambda: hybrid(
            "hybrid_projected",
            "the hybrid with a projection of the encoder's space learned online from the items users "
            "take one after another (in-batch softmax), for ranking and generated CF vectors",
            default,
            projection=True,
        ),
        "hybrid_prior_blend": lambda: hybrid(
            "hybrid_prior_blend",
            "the hybrid with its blend's prior weights, not learned from the stream",
            default,
            learn_blend=False,
        ),
        "hybrid_clauses_apart": lambda: hybrid(
            "hybrid_clauses_apart",
            "the hybrid with each review clause encoded again on its own (one more encoder sequence "
            "per clause) instead of pooled from the review's one pass",
            reading="apart",
        ),
        "hybrid_impressions": lambda: HybridAdapter(
            # Its own CF model: it learns the lists it shows, which no other row sees.
            SharedCF(OnlineCF(seed=seed, **cf), negatives="cf_negatives" in default),
            text_dim,
            name="hybrid_impressions",
            description="the hybrid, each list it ranks shown to its user as an impression: an item "
            "shown and not taken sinks on the user's lists, and CF draws the negatives of the user's "
            "next take from it",
            impressions=True,
            **{**params, "opinions": default},
        ),
        "hybrid_impressions_no_cf": lambda: HybridAdapter(
            SharedCF(OnlineCF(seed=seed, **cf), negatives="cf_negatives" in default),
            text_dim,
            name="hybrid_impressions_no_cf",
            description="hybrid_impressions with CF's negatives drawn as ever: impressions in the "
            "ranker alone",
            impressions=True,
            exposure_cf=False,
            **{**params, "opinions": default},
        ),
        "als": lambda: ImplicitALS(seed=seed, **dict(batch_params or {})),
        "ease": lambda: BatchEASE(retrain_every=int(dict(batch_params or {}).get("retrain_every", 2000))),
        "sasrec": lambda: SASRec(seed=seed, **dict(sequence_params or {})),
    }
    chosen = list(names) if names else [n for n in factories if n not in ABLATIONS]
    unknown = [n for n in chosen if n not in factories]
    if unknown:
        raise ValueError(f"recommenders must be among {', '.join(factories)}, got {unknown!r}")
    return [factories[n]() for n in chosen]


def alternate_rows(
    encoder: str,
    text_dim: int,
    seed: int = 42,
    cf_params: Mapping[str, Any] | None = None,
    recommender_params: Mapping[str, Any] | None = None,
) -> list[StreamRecommender]:
    """``text_<encoder>`` and ``hybrid_<encoder>``: the text and hybrid rows again, reading the
    vectors of another encoder (one of the protocol's `alternates`), e.g. a fine-tuned copy, so
    that both encoders are measured in one run on the same events.

    >>> [(r.name, r.encoder) for r in alternate_rows("finetuned", text_dim=4)]
    [('text_finetuned', 'finetuned'), ('hybrid_finetuned', 'finetuned')]
    """
    text = TextAdapter()
    text.name, text.encoder = f"text_{encoder}", encoder
    text.description = f"{TextAdapter.description}, with the encoder {encoder!r}"
    hybrid = HybridAdapter(
        SharedCF(OnlineCF(seed=seed, **dict(cf_params or {})), negatives="cf_negatives" in DEFAULT_PARTS),
        text_dim,
        name=f"hybrid_{encoder}",
        description=f"the hybrid reading the text vectors of the encoder {encoder!r}",
        **{**dict(recommender_params or {}), "opinions": frozenset(DEFAULT_PARTS)},
    )
    hybrid.encoder = encoder
    return [text, hybrid]
