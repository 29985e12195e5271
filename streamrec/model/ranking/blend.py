"""The ranker's blend of signals, learned online from what users take among what was ranked for them.

Each signal (text, CF, popularity, ...) is standardized over the candidates that have evidence for
it; a candidate without evidence (no text, no CF vector, nobody took it yet) gets 0 there and a
*missing* flag of its own, so "unknown" is learned as what it is worth rather than read as "low".
Each signal's weight depends on the evidence behind it: it is crossed with how much is known of
the user and of the item (`log1p` of their interactions), so the blend can learn that CF speaks for
items many took and text for the items nobody took yet. The item's own evidence (its interactions,
whether nobody took it, its age) enters as well.

The weights start from a prior (the hand-set blend) and learn from every take of one of the items ranked
for the user before the take are its candidates, the item taken is the one they chose (a softmax
over the candidates, the listwise loss of learning to rank), and an item the user then panned is
pushed out of the list instead (`-log(1 - p)`). Updates are AdaGrad steps shrunk towards the prior.
A weight learned from an event is used only for lists ranked after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.base import DoubleArray

__all__ = ["CONTEXTS", "EVIDENCE_SCALE", "ITEM_FEATURES", "LearnedBlend"]

#: What each signal is crossed with: its weight is `w0 + w_u eu + w_i ei + w_ui eu ei`.
CONTEXTS = ("base", "user", "item", "user_x_item")
#: The item's own features (crossed with 1 and with the user's evidence), before one missing
#: flag per signal.
ITEM_FEATURES = ("item_evidence", "unseen", "age")
#: Evidence is `log1p(interactions) / EVIDENCE_SCALE`: 1 at about 50 interactions.
EVIDENCE_SCALE = 4.0

BoolArray = npt.NDArray[np.bool_]


def evidence(counts: DoubleArray | float) -> Any:
    """How much is known of users or items with `counts` interactions, on the blend's scale.

    >>> [round(float(evidence(n)), 2) for n in (0, 5, 50)]
    [0.0, 0.45, 0.98]
    """
    return np.log1p(np.maximum(counts, 0.0)) / EVIDENCE_SCALE


class LearnedBlend:
    """A linear scorer of the ranker's signals, crossed with evidence, learned online.

    Parameters
    ----------
    prior
        Signal name to its prior weight, in the ranker's order. A prior of 0 turns a signal off
        (an ablation): its features stay 0 and are never learned.
    cross_prior
        Signal name to the prior of its weight crossed with the user's and the item's evidence
        (the others start at 0): e.g. CF weighted by how much is known of both.
    learning_rate
        AdaGrad's step.
    l2
        Pull of each weight back towards its prior, per step.
    learn
        False keeps the prior (the hand-set blend, for comparison).

    Examples
    --------
    >>> blend = LearnedBlend({"text": 1.0, "pop": 1.0})
    >>> x = np.array([[1.0, -1.0], [-1.0, 1.0], [0.0, 0.0]])  # text, pop per candidate
    >>> valid = np.array([[True, True], [True, True], [True, False]])
    >>> F = blend.features(x, valid, user_evidence=0.5, item_evidence=np.zeros(3), age=np.zeros(3))
    >>> blend.scores(F).round(2).tolist()
    [0.0, 0.0, 0.0]
    >>> for _ in range(50):  # this user takes what text favours
    ...     blend.learn(F, positive=0)
    >>> s = blend.scores(F); bool(s[0] > s[1])
    True
    >>> blend.weight("text") > 1.0 > blend.weight("pop")
    True
    """

    def __init__(
        self,
        prior: Mapping[str, float],
        cross_prior: Mapping[str, float] | None = None,
        learning_rate: float = 0.05,
        l2: float = 1e-3,
        learn: bool = True,
    ) -> None:
        self.signals = tuple(prior)
        self.prior = dict(prior)
        self.cross_prior = dict(cross_prior or {})
        self.learning_rate = learning_rate
        self.l2 = l2
        self.learn_ = learn
        n_signals = len(self.signals)
        #: Which signals are on (a prior of 0 is an ablation).
        self.on = np.array([prior[s] != 0 or self.cross_prior.get(s, 0) != 0 for s in self.signals])
        n_item = len(ITEM_FEATURES) + n_signals
        self.n_features = n_signals * len(CONTEXTS) + 2 * n_item
        theta0 = np.zeros(self.n_features)
        for s, name in enumerate(self.signals):
            theta0[s * len(CONTEXTS)] = prior[name]
            theta0[s * len(CONTEXTS) + 3] = self.cross_prior.get(name, 0.0)
        self.theta0 = theta0
        self.theta = theta0.copy()
        self._g2 = np.ones(self.n_features)
        #: Lists learned from: takes, and pans; and takes of items that were not among the candidates.
        self.n_learned = 0
        self.n_panned = 0
        self.n_outside = 0

    @property
    def names(self) -> list[str]:
        """The name of each feature column.

        >>> LearnedBlend({"text": 1.0}).names[:2], LearnedBlend({"text": 1.0}).names[-1]
        (['text', 'text*user'], 'user*missing_text')
        """
        crossed = [f"{s}{'' if c == 'base' else '*' + c}" for s in self.signals for c in CONTEXTS]
        item = [*ITEM_FEATURES, *(f"missing_{s}" for s in self.signals)]
        return [*crossed, *item, *(f"user*{name}" for name in item)]

    # -- features ----------------------------------------------------------------------

    def features(
        self,
        x: DoubleArray,
        valid: BoolArray,
        user_evidence: DoubleArray | float,
        item_evidence: DoubleArray,
        age: DoubleArray,
    ) -> DoubleArray:
        """One row per candidate: each signal's standardized value `x` (0 where not `valid`)
        crossed with the evidence, then the item's features and a missing flag per signal.
        `user_evidence` is one user's, or one per row (many users' candidates at once)."""
        n, n_signals = x.shape
        on = self.on
        x = np.where(valid & on[None, :], x, 0.0)
        ei = np.asarray(item_evidence, dtype=np.float64)
        eu = np.broadcast_to(np.asarray(user_evidence, dtype=np.float64), (n,))
        contexts = np.stack([np.ones(n), eu, ei, eu * ei], axis=1)  # (n, 4)
        crossed = (x[:, :, None] * contexts[:, None, :]).reshape(n, n_signals * len(CONTEXTS))
        missing = np.where(on[None, :], ~valid, False).astype(np.float64)
        item = np.concatenate(
            [
                ei[:, None],
                (ei <= 0).astype(np.float64)[:, None],
                np.asarray(age, np.float64)[:, None],
                missing,
            ],
            axis=1,
        )
        return np.concatenate([crossed, item, eu[:, None] * item], axis=1)

    def scores(self, features: DoubleArray) -> DoubleArray:
        out: DoubleArray = features @ self.theta
        return out

    def contributions(self, features: DoubleArray) -> DoubleArray:
        """Each signal's part of each candidate's score: `(n_signals, n)`."""
        n_signals, c = len(self.signals), len(CONTEXTS)
        crossed = features[:, : n_signals * c].reshape(len(features), n_signals, c)
        weights = self.theta[: n_signals * c].reshape(n_signals, c)
        out: DoubleArray = np.einsum("nsc,sc->sn", crossed, weights)
        return out

    # -- learning ----------------------------------------------------------------------

    def learn(self, features: DoubleArray, positive: int, liked: bool = True) -> None:
        """One list: the candidate at `positive` was taken (`liked`), or taken and panned."""
        if not self.learn_ or len(features) < 2:
            return
        scores = self.scores(features)
        p = np.exp(scores - scores.max())
        p /= p.sum()
        mean = p @ features
        if liked:
            grad = mean - features[positive]
            self.n_learned += 1
        else:
            q = min(float(p[positive]), 1.0 - 1e-6)
            grad = q / (1.0 - q) * (features[positive] - mean)
            self.n_panned += 1
        grad = grad + self.l2 * (self.theta - self.theta0)
        self._g2 += grad * grad
        self.theta -= self.learning_rate * grad / np.sqrt(self._g2)

    # -- reading the weights -------------------------------------------------------------

    def weight(self, signal: str, user_interactions: float = 0.0, item_interactions: float = 0.0) -> float:
        """A signal's weight for a user and an item with these many interactions."""
        s = self.signals.index(signal)
        c = len(CONTEXTS)
        eu, ei = float(evidence(user_interactions)), float(evidence(item_interactions))
        w = self.theta[s * c : s * c + c]
        return float(w[0] + w[1] * eu + w[2] * ei + w[3] * eu * ei)

    def describe(
        self, points: Sequence[tuple[float, float]] = ((0, 0), (0, 50), (20, 0), (20, 50))
    ) -> dict[str, Any]:
        """Each signal's weight at a few (user, item) interaction counts, and the item features'."""
        n_signals, c = len(self.signals), len(CONTEXTS)
        item_names = [*ITEM_FEATURES, *(f"missing_{s}" for s in self.signals)]
        base = n_signals * c
        return {
            "signals": {
                s: {f"user {u:g}, item {i:g}": round(self.weight(s, u, i), 4) for u, i in points}
                for s, on in zip(self.signals, self.on, strict=True)
                if on
            },
            "item": {
                name: round(float(self.theta[base + j]), 4)
                for j, name in enumerate(item_names)
                if abs(self.theta[base + j]) > 1e-9
            },
            "lists_learned": self.n_learned,
            "pans_learned": self.n_panned,
            "takes_outside_the_candidates": self.n_outside,
        }
