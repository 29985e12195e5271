"""The prequential protocol's terms (`PrequentialConfig`) and its outcome (`PrequentialResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.base import IntArray

__all__ = ["PrequentialConfig", "PrequentialResult"]


@dataclass(frozen=True)
class PrequentialConfig:
    """How the stream is scored.

    Parameters
    ----------
    ks
        Cut-offs of the ranking metrics.
    n_negatives
        Negatives sampled per event for AUC (items the user has not interacted with).
    cold_threshold
        An item (user) is cold when it had fewer interactions than this before the event.
    seed
        Seeds the negative sampler.
    """

    ks: tuple[int, ...] = (10, 20)
    n_negatives: int = 100
    cold_threshold: int = 5
    seed: int = 42
    #: Text cosine above which a listed item counts as a neighbour of an item the user disliked.
    disliked_cosine: float = 0.9
    #: Resamples (of users) behind each confidence interval.
    bootstrap_rounds: int = 1000
    #: "prequential" (test, then train, on every event) or "leave-one-out" (each user's last
    #: interaction held out and ranked against the whole catalog once the rest is learned).
    protocol: str = "prequential"
    #: Share of the stream (in time order) learned before any event is scored: 0.8 learns the
    #: first 80% and scores the rest prequentially (a time split, e.g. for a model trained on
    #: that 80%).
    score_from: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": "time (ties shuffled with a fixed seed)",
            "scheme": "prequential: recommend for the user, score against the true item, then learn it"
            if self.protocol == "prequential"
            else "leave-one-out: each user's last interaction held out; the rest learned in time order; "
            "then each held-out item ranked over the whole catalog, the user's history excluded",
            "exclude_seen": True,
            "repeat_events": "not scored (the true item is excluded as already seen), but learned",
            "ks": list(self.ks),
            "auc_negatives": self.n_negatives,
            "cold_threshold": self.cold_threshold,
            "slices": {
                "all": "every scored event",
                "cold_items": f"events whose item had fewer than {self.cold_threshold} earlier interactions",
                "cold_users": f"events whose user had fewer than {self.cold_threshold} earlier interactions",
            },
            "diversity": "mean pairwise 1 - cosine of the listed items' text vectors (items with text only)",
            "coverage": "share of the items known at the end that appeared in some top-K list",
            "liked": "liked HR@K and NDCG@K: over the events whose user rated the item 4-5; panned-hit "
            "rate@K: the share of the events rated 1-2 whose item was in the top K (lower is better)",
            "repeat": f"repeat@{self.ks[0]}: the share of a user's top {self.ks[0]} that their previous "
            "list held, when they took nothing of that one (all events only)",
            "disliked_neighbours": f"share of the top {self.ks[0]} (items with text) whose text cosine to "
            f"an item the user rated 1-2 so far is above {self.disliked_cosine}; events of users with one",
            "reading": "per reader: encoder sequences and clauses per review; and, on 90 reviews of six "
            "domains labelled by hand (streamrec/data/labelled_reviews.jsonl), with the sentiment model "
            "the stream taught: aspect agreement and precision, clause polarity AUC, and the accuracy "
            "on clauses whose polarity is opposite to their review's rating",
            "sentiment": "AUC of the polarity the review reader reads in each review's text, before "
            "learning its rating, against the rating (1-2 stars negative, 4-5 positive); per reader: "
            "pooled (one encoder pass per review) and, when a recommender needs it, apart (each "
            "clause encoded again)",
            "seed": self.seed,
            "score_from": self.score_from,
        }


@dataclass
class PrequentialResult:
    """Metrics per recommender and slice, and the per-event hits behind the HR-over-time plot."""

    dataset: dict[str, Any]
    protocol: dict[str, Any]
    recommenders: dict[str, dict[str, dict[str, Any]]]
    descriptions: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Stream position of each scored event.
    event_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Per recommender, 1 where the scored event's item was in the top 10 (first K).
    hits: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "recommenders": self.recommenders,
            "descriptions": self.descriptions,
            "params": self.params,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }
