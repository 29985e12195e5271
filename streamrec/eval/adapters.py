"""Adapters that drive streamrec's own models under the protocol: `cf`, `text` and `hybrid`.

The ``hybrid`` adapter drives `OnlineCF` and `Recommender` exactly as the CF and
recommender workers do, so its numbers are those of the code that serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamrec.eval.base import EXCLUDED, StreamRecommender
from streamrec.eval.interactions import Interaction
from streamrec.eval.stream import StreamState
from streamrec.model.base import DoubleArray, FloatArray, IntArray
from streamrec.model.cf.content import ContentToCF
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.catalog import ItemTexts
from streamrec.model.text.sentiment import rating_label
from streamrec.model.users.profile import UserProfile, rating_weight

__all__ = ["CFAdapter", "HybridAdapter", "SharedCF", "TextAdapter"]


class SharedCF:
    """One `OnlineCF` learned once per event, read by every adapter that needs it.

    Keeps the implicit item vectors as a matrix aligned with the stream's item positions,
    updated from the model's changed items, so ranking all items is one product.
    """

    def __init__(self, model: OnlineCF, negatives: bool = True) -> None:
        self.model = model
        #: Learn a 1-2 star review as a negative, as the CF worker does (False: as a positive).
        self.negatives = negatives
        self._last: int = -1
        self._changed: tuple[list[str], list[str]] = ([], [])
        self.matrix = np.zeros((1024, model.vector_size), dtype=np.float32)
        self.known = np.zeros(1024, dtype=bool)

    def step(self, state: StreamState, event: Interaction) -> tuple[list[str], list[str]]:
        """Learn `event` (once, whoever asks first); return the changed users and items."""
        if self._last != state.n_events:
            self._last = state.n_events
            if self.negatives and rating_label(event.rating) == 0:
                self.model.learn_negative(event.user, event.item, event.rating)
            else:
                self.model.learn_one(event.user, event.item, event.rating)
            users, items = self.model.drain_changed()
            changed_items = [str(i) for i in items]
            self._changed = ([str(u) for u in users], changed_items)
            if changed_items:
                rows = np.array([state.add_item(i) for i in changed_items], dtype=np.int64)
                if state.n_items > len(self.matrix):
                    self._grow(state.n_items)
                self.matrix[rows] = self.model.item_vectors(changed_items)
                self.known[rows] = True
        return self._changed

    def scores(self, state: StreamState, user: str) -> DoubleArray:
        """Implicit scores of all items; items the model never learned cannot be ranked."""
        n = state.n_items
        if n > len(self.matrix):
            self._grow(n)
        matrix = self.matrix[:n]
        query = self.model.user_vector(user)
        out = matrix[:, -1].astype(np.float64) if query is None else (matrix @ query).astype(np.float64)
        out[~self.known[:n]] = EXCLUDED
        return out

    def _grow(self, n: int) -> None:
        size = max(n, 2 * len(self.matrix))
        matrix = np.zeros((size, self.matrix.shape[1]), dtype=np.float32)
        matrix[: len(self.matrix)] = self.matrix
        known = np.zeros(size, dtype=bool)
        known[: len(self.known)] = self.known
        self.matrix, self.known = matrix, known


class CFAdapter(StreamRecommender):
    """``cf``: `OnlineCF` alone; all items ranked by its implicit score, ratings from its explicit model.

    With `content` (``cf_content``), an item CF has learned little or nothing of is scored with
    the CF vector its text predicts (`ContentToCF`), blended out as its interactions arrive.
    """

    name = "cf"

    def __init__(self, shared: SharedCF, content: ContentToCF | None = None, name: str = "cf") -> None:
        super().__init__()
        self.name = name
        self.shared = shared
        self.content = content
        self.description = f"OnlineCF alone: {shared.model.version}; ratings from its explicit BiasedMF"
        if content is not None:
            self.description += (
                "; items it learned from fewer than "
                f"{content.full_takes:g} interactions scored with the CF vector their text predicts "
                "(online ridge regression from text to CF vectors), blended out as interactions arrive"
            )
        self._generated = np.zeros((0, shared.model.vector_size), dtype=np.float32)
        self._fits = -1

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        state = self._state()
        _, items = self.shared.step(state, event)
        content = self.content
        if content is None:
            return
        rows = [r for r in (state.pos[i] for i in items) if state.has_text[r]]
        for r in rows:
            content.observe(
                state.items[r], state.text_matrix[r], self.shared.matrix[r], float(state.item_counts[r])
            )
        n = state.n_items
        if not content.ready:
            return
        if content.fits == self._fits and len(self._generated) >= n:
            # The event's item may have a new text (its review): its generated vector follows.
            pos = state.pos[event.item]
            fresh = content.generate(state.text_matrix[pos : pos + 1])
            if fresh is not None and content.fits == self._fits:
                self._generated[pos] = fresh[0]
                return
        # A refit moves every generated vector: all are made again here (scoring changes nothing).
        generated = content.generate(state.text_matrix[:n])
        if generated is not None:
            self._generated, self._fits = generated, content.fits

    def scores(self, user: str) -> DoubleArray:
        out = self.shared.scores(self._state(), user)
        if self.content is None or not len(self._generated):
            return out
        state = self._state()
        n = min(state.n_items, len(self._generated))
        query = self.shared.model.user_vector(user)
        gen = self._generated[:n]
        gen_scores = (gen[:, -1] if query is None else gen @ query).astype(np.float64)
        known = out[:n] > EXCLUDED
        share = np.where(known, self.content.share(state.item_counts[:n]), 0.0)
        blended = share * np.where(known, out[:n], 0.0) + (1.0 - share) * gen_scores
        out[:n] = np.where(state.has_text[:n], blended, out[:n])
        return out

    def predict_rating(self, user: str, item: str) -> float | None:
        return self.shared.model.predict_rating(user, item)


class TextAdapter(StreamRecommender):
    """``text``: the user's text profile against item text vectors, nothing else.

    Item vectors fold catalog text and review vectors (`ItemTexts`); the user profile is
    the recommender's `UserProfile` (time-decayed mean of what they reviewed and of the
    items they touched). Users without any text rank items in catalog order.
    """

    name = "text"
    description = "cosine of the user's time-decayed text profile to item text vectors (encoder alone)"

    def __init__(self, half_life_s: float = 30 * 86_400.0) -> None:
        super().__init__()
        self.half_life_s = half_life_s
        self.texts = ItemTexts()
        self.profiles: dict[str, UserProfile] = {}
        self.matrix = np.zeros((1024, 1), dtype=np.float32)
        self.has = np.zeros(1024, dtype=bool)

    def start(self, state: StreamState, catalog: Mapping[str, tuple[str, FloatArray | None]]) -> None:
        super().start(state, catalog)
        self.matrix = np.zeros((max(1024, state.n_items), state.text_matrix.shape[1]), dtype=np.float32)
        self.has = np.zeros(len(self.matrix), dtype=bool)
        for item, (_, vector) in catalog.items():
            if vector is not None:
                self._set(state.pos[item], self.texts.set_catalog(item, vector))

    def add_item(self, item: str, title: str, vector: FloatArray | None, ts: float) -> None:
        if vector is not None:
            self._set(self._state().pos[item], self.texts.set_catalog(item, vector))

    def _set(self, pos: int, vector: FloatArray) -> None:
        if pos >= len(self.matrix):
            size = max(2 * len(self.matrix), pos + 1)
            matrix = np.zeros((size, self.matrix.shape[1]), dtype=np.float32)
            matrix[: len(self.matrix)] = self.matrix
            has = np.zeros(size, dtype=bool)
            has[: len(self.has)] = self.has
            self.matrix, self.has = matrix, has
        self.matrix[pos] = vector
        self.has[pos] = True

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        state = self._state()
        pos = state.add_item(event.item)
        profile = self.profiles.get(event.user)
        if profile is None:
            profile = self.profiles[event.user] = UserProfile(event.user, half_life_s=self.half_life_s)
        if vector is not None:
            self._set(pos, self.texts.add_review(event.item, vector, rating_weight(event.rating)))
            profile.observe(event.item, event.ts, "review", vector=vector, weight=rating_weight(event.rating))
        else:
            item_vector = self.matrix[pos] if pos < len(self.has) and self.has[pos] else None
            action = "review" if event.rating is not None else "click"
            profile.observe(
                event.item, event.ts, action, vector=item_vector, weight=rating_weight(event.rating)
            )

    def scores(self, user: str) -> DoubleArray:
        n = self._state().n_items
        profile = self.profiles.get(user)
        query = profile.text_vector() if profile is not None else None
        out = np.full(n, -2.0)  # below any cosine: items without text come last
        m = min(n, len(self.matrix))
        if query is None:
            out[:m][self.has[:m]] = 0.0
            return out
        out[:m] = np.where(self.has[:m], self.matrix[:m] @ query, -2.0)
        return out

    def params(self) -> dict[str, Any]:
        return {"half_life_s": self.half_life_s}


class HybridAdapter(StreamRecommender):
    """``hybrid``: streamrec's `Recommender` fed by `OnlineCF`, as the workers run them.

    Per event: the CF worker's `learn_one` and the changed CF vectors it publishes
    (`on_item_cf`, `on_user_cf`); the review's vector describing its item
    (`on_item_review`); the user's event (`on_review` or `on_click`). Ranking is
    `Recommender.recommend`; AUC reads the ranker's blended relevance. A review comes as the
    encoder role reads it: its polarity and opinions are those of the protocol's `ReviewReader`
    of the `reading` mode (``"pooled"``: one pass; ``"apart"``: each clause encoded again).
    """

    name = "hybrid"

    def __init__(
        self,
        shared: SharedCF,
        text_dim: int,
        name: str = "hybrid",
        description: str = "",
        reading: str = "pooled",
        impressions: bool = False,
        exposure_cf: bool = True,
        **recommender_params: Any,
    ) -> None:
        super().__init__()
        self.name = name
        self.shared = shared
        self.reading = reading
        #: Each list it ranks is shown to its user (an impression), as a shop that sends
        #: impressions shows it: what the user then does not take sinks on their next list.
        self.impressions = impressions
        #: ... and CF draws the negatives of the user's next take from it.
        self.exposure_cf = exposure_cf
        self.recommender_params = recommender_params
        self.rec = Recommender(text_dim, shared.model.vector_size, **recommender_params)
        self.description = description or (
            "streamrec Recommender (HybridRanker: text + CF + popularity + item-to-item"
            + (", reviews read as opinions" if self.rec.opinions else "")
            + f") fed by {shared.model.version}"
        )

    def start(self, state: StreamState, catalog: Mapping[str, tuple[str, FloatArray | None]]) -> None:
        super().start(state, catalog)
        for item, (title, vector) in catalog.items():
            self.rec.on_item(item, title, vector, ts=state.ts)

    def add_item(self, item: str, title: str, vector: FloatArray | None, ts: float) -> None:
        self.rec.on_item(item, title, vector, ts=ts)

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        users, items = self.shared.step(self._state(), event)
        model, rec = self.shared.model, self.rec
        if items:
            rec.on_item_cf(items, model.item_vectors(items))
        known = [(u, v) for u in users if (v := model.user_vector(u)) is not None]
        if known:
            rec.on_user_cf([u for u, _ in known], np.stack([v for _, v in known]))
        if vector is not None:
            state = self._state()
            key = f"{event.user}/{state.n_events}".encode()
            reading = state.readings.get(self.reading)
            polarity = reading.polarity if reading is not None else None
            opinions = reading.opinions if reading is not None else ()
            rec.on_item_review(event.item, vector, event.rating, key, opinions, event.user)
            rec.on_review(
                event.user, event.item, event.rating, event.ts, vector, polarity=polarity, opinions=opinions
            )
        elif event.rating is not None:
            rec.on_review(event.user, event.item, event.rating, event.ts, None)
        else:
            rec.on_click(event.user, event.item, "click", event.ts)

    def rank(self, user: str, k: int, probe: IntArray | None) -> tuple[IntArray, DoubleArray | None]:
        state = self._state()
        scored = self.rec.recommend([user], k)[0]
        top = np.array([state.pos[s.item_id] for s in scored if s.item_id in state.pos], dtype=np.int64)
        probe_scores = None
        if probe is not None:
            ids = [state.items[p] for p in probe]
            probe_scores = self.rec.ranker.relevance(self.rec.request(user), ids)
        if self.impressions and scored:
            shown = [s.item_id for s in scored]
            self.rec.on_impression(user, shown)
            if self.exposure_cf:
                self.shared.model.learn_exposure(user, shown)
        return top, probe_scores

    def predict_rating(self, user: str, item: str) -> float | None:
        return self.shared.model.predict_rating(user, item)

    def params(self) -> dict[str, Any]:
        ranker = self.rec.ranker
        names = [
            n for n in vars(ranker) if not n.startswith("_") and isinstance(getattr(ranker, n), int | float)
        ]
        out: dict[str, Any] = {n: getattr(ranker, n) for n in names}
        out["half_life_s"] = self.rec.half_life_s
        # What the stream taught the blend: each signal's weight at a few evidence points.
        out["blend"] = ranker.blend.describe()
        return out

    def score_items(self, user: str, positions: IntArray) -> DoubleArray:
        """The ranker's blended relevance of the listed items, as it ranks them for `user`."""
        state = self._state()
        return self.rec.ranker.relevance(self.rec.request(user), [state.items[p] for p in positions])

    def learn_impression(self, user: str, shown: Sequence[str], clicked: Sequence[str]) -> None:
        """The list was shown to the user, as the recommender worker records an impression."""
        self.rec.on_impression(user, list(shown))
