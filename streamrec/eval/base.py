"""The recommender as the prequential protocol drives it: rank for a user, then learn the event."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamrec.eval.interactions import Interaction
from streamrec.eval.stream import StreamState
from streamrec.model.base import DoubleArray, FloatArray, IntArray

__all__ = ["EXCLUDED", "StreamRecommender"]

#: Score given to items a recommender must not (or cannot) recommend.
EXCLUDED = -np.inf


class StreamRecommender(ABC):
    """A recommender as the protocol drives it: rank for a user, then learn the event.

    Most recommenders score every known item (`scores`); the base class excludes seen
    items, takes the top K and reads the probe items' scores for AUC.
    """

    name: str = ""
    #: One line for the report: what it is and how it learns.
    description: str = ""
    #: Whose text vectors it reads: "" for the protocol's encoder, else the name of one of its
    #: alternates (e.g. a fine-tuned copy), so that two encoders are compared in one run.
    encoder: str = ""

    def __init__(self) -> None:
        self.state: StreamState | None = None

    def start(self, state: StreamState, catalog: Mapping[str, tuple[str, FloatArray | None]]) -> None:
        """Called once before the stream with the catalog items (id -> (title, vector))."""
        self.state = state

    def add_item(  # noqa: B027 - a hook: most recommenders learn items from their interactions alone
        self, item: str, title: str, vector: FloatArray | None, ts: float
    ) -> None:
        """Called when a catalog item enters mid-stream, already known to the state (its display
        title and text vector, at time `ts`); items entering before the stream come to `start`."""

    @abstractmethod
    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        """Learn one event; `vector` encodes its review text when it has one."""

    def scores(self, user: str) -> DoubleArray:
        """A score per known item (position), higher is better."""
        raise NotImplementedError

    def score_items(self, user: str, positions: IntArray) -> DoubleArray:
        """Scores of the items at `positions` (a list shown to `user`), higher is better."""
        return np.asarray(self.scores(user), dtype=np.float64)[positions]

    def learn_impression(  # noqa: B027 - a hook: most recommenders learn nothing from what is shown
        self, user: str, shown: Sequence[str], clicked: Sequence[str]
    ) -> None:
        """A list was shown to `user` (`clicked`: those taken from it, learned next as events)."""

    def rank(self, user: str, k: int, probe: IntArray | None) -> tuple[IntArray, DoubleArray | None]:
        """Top `k` item positions for `user` (seen items excluded), and the scores of `probe`."""
        state = self._state()
        scores = np.array(self.scores(user), dtype=np.float64)
        probe_scores = scores[probe] if probe is not None else None
        seen = state.seen_positions(user)
        if len(seen):
            scores[seen] = EXCLUDED
        n = len(scores)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), probe_scores
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > EXCLUDED]
        return top.astype(np.int64), probe_scores

    def finish(self) -> None:  # noqa: B027 - a hook: most recommenders have nothing to finish
        """Called once the learning is over, before the held-out events of leave-one-out are ranked."""

    def predict_rating(self, user: str, item: str) -> float | None:
        return None

    def params(self) -> dict[str, Any]:
        return {}

    def _state(self) -> StreamState:
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__} must be started before use")
        return self.state
