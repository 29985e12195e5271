"""Sentiment read from text: a head on the encoder's vectors, learned online from ratings.

A new shop has no labelled reviews, so the head starts from a zero-shot prior: the difference
between the mean vector of a few plainly positive phrases and of a few plainly negative ones,
in every language the anchors list, encoded by the deployment's own encoder. Each rated review
then teaches it (1-2 stars negative, 4-5 positive, 3 left out) by one step of logistic regression
that is pulled back toward the prior and weighs the rarer class up, so the stream's own words
refine what the anchors began. It reads any text the encoder reads: a multilingual encoder makes
a multilingual head.

The same head reads a review's clauses. A rating says how the review as a whole reads, not each
clause ("lovely tone, but the tuners slip" is a 5-star review that pans the tuners), so a rated
review teaches each clause only as much as the head already reads the clause on the rating's
side: a clause that agrees with the rest learns the rating, one that contrasts with it (read
on the other side) learns almost nothing from it and keeps its own reading. Together the
clauses of a review weigh `clause_weight` times the review itself.

How well it reads is measured prequentially by `streamrec eval` (each review scored before its
rating is learned: `sentiment` in the report) and on people's labels by `streamrec aspects`
(docs/opinions.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from streamrec.model.base import FloatArray, TextEncoder

__all__ = ["NEGATIVE_ANCHORS", "POSITIVE_ANCHORS", "SentimentHead", "rating_label"]

#: Plainly positive and negative phrases, English and Chinese, the head's zero-shot prior.
POSITIVE_ANCHORS = (
    "Great product, works perfectly, I love it.",
    "Excellent quality, highly recommended.",
    "Very happy with this purchase.",
    "质量很好，非常满意。",
    "性价比高，推荐购买。",
)
NEGATIVE_ANCHORS = (
    "Terrible product, it broke after a week.",
    "Poor quality, a waste of money.",
    "Very disappointed, do not buy.",
    "质量差，很失望。",
    "用了一周就坏了，不推荐。",
)


def rating_label(rating: float | None, low: float = 2.0, high: float = 4.0) -> int | None:
    """The sentiment a rating stands for: 0 at most `low`, 1 at least `high`, else None.

    >>> [rating_label(r) for r in (1, 2, 3, 4, 5, None)]
    [0, 0, None, 1, 1, None]
    """
    if rating is None:
        return None
    if rating <= low:
        return 0
    if rating >= high:
        return 1
    return None


class SentimentHead:
    """Polarity in [-1, 1] of a text's vector: logistic regression learned one review at a time.

    Parameters
    ----------
    prior
        Direction of positive sentiment in the encoder's space (`from_anchors` makes one).
    scale
        Length the prior direction is given: how confident the head is before it learns.
    lr
        Step size of each update.
    l2
        Pull of the weights back toward the prior.
    clause_weight
        How much a review's clauses together weigh in a step, against the review itself.

    Examples
    --------
    >>> head = SentimentHead(np.array([1.0, 0.0], dtype=np.float32))
    >>> bool(head.polarity(np.array([[0.9, 0.1]], dtype=np.float32))[0] > 0)
    True
    >>> for _ in range(200):
    ...     _ = head.learn(np.array([0.0, 1.0], dtype=np.float32), rating=1.0)
    >>> bool(head.polarity(np.array([[0.0, 1.0]], dtype=np.float32))[0] < 0)
    True
    """

    def __init__(
        self,
        prior: FloatArray,
        scale: float = 10.0,
        lr: float = 0.2,
        l2: float = 1e-4,
        clause_weight: float = 1.0,
    ) -> None:
        self.scale = scale
        self.lr = lr
        self.l2 = l2
        self.clause_weight = clause_weight
        self.prior = np.asarray(prior, dtype=np.float64) * scale
        self.weights = self.prior.copy()
        self.bias = 0.0
        #: Rated reviews learned, per class: the rarer class's steps are weighed up.
        self.n_positive = 0
        self.n_negative = 0

    @classmethod
    def from_anchors(
        cls,
        encoder: TextEncoder,
        positive: Sequence[str] = POSITIVE_ANCHORS,
        negative: Sequence[str] = NEGATIVE_ANCHORS,
        **params: float,
    ) -> SentimentHead:
        """A head whose prior is the encoder's own positive-minus-negative direction."""
        vectors = np.asarray(encoder.encode([*positive, *negative]), dtype=np.float64)
        direction = vectors[: len(positive)].mean(axis=0) - vectors[len(positive) :].mean(axis=0)
        norm = float(np.linalg.norm(direction))
        return cls((direction / norm if norm > 0 else direction).astype(np.float32), **params)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def logits(self, vectors: FloatArray) -> FloatArray:
        out: FloatArray = (np.asarray(vectors, dtype=np.float64) @ self.weights + self.bias).astype(
            np.float32
        )
        return out

    def polarity(self, vectors: FloatArray) -> FloatArray:
        """`2 * P(positive) - 1` per row: -1 plainly negative, 0 undecided, 1 plainly positive."""
        logits = np.clip(self.logits(np.atleast_2d(vectors)), -30.0, 30.0)
        out: FloatArray = (2.0 / (1.0 + np.exp(-logits)) - 1.0).astype(np.float32)
        return out

    def learn(self, vector: FloatArray, rating: float | None, clauses: FloatArray | None = None) -> bool:
        """One step on a rated review (and its `clauses`' vectors); False if the rating says
        neither (3 stars, or none)."""
        label = rating_label(rating)
        if label is None:
            return False
        x = np.asarray(vector, dtype=np.float64)
        if label:
            self.n_positive += 1
        else:
            self.n_negative += 1
        total = self.n_positive + self.n_negative
        weight = total / (2.0 * (self.n_positive if label else self.n_negative))
        p = _sigmoid(float(x @ self.weights + self.bias))
        g = (p - label) * weight
        grad_w, grad_b = g * x, g
        if clauses is not None and len(clauses) and self.clause_weight > 0:
            c = np.asarray(clauses, dtype=np.float64).reshape(len(clauses), -1)
            pc = 1.0 / (1.0 + np.exp(-np.clip(c @ self.weights + self.bias, -30.0, 30.0)))
            # How far the head already reads each clause on the rating's side.
            agree = pc if label else 1.0 - pc
            gc = (pc - label) * agree * weight * self.clause_weight / len(c)
            grad_w = grad_w + gc @ c
            grad_b += float(gc.sum())
        self.weights -= self.lr * (grad_w + self.l2 * (self.weights - self.prior))
        self.bias -= self.lr * 0.1 * grad_b
        return True


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
