"""Prequential (test-then-train) evaluation of streaming recommenders on one event stream.

For each interaction in time order, every recommender is first asked for its top K for
that user, excluding what the user already interacted with; the list is scored against
the item the user actually took. Then every recommender learns from the event, with its
review text if any. All recommenders see the same stream and are scored on the same
events, negatives and slices.

The ``hybrid`` adapter drives `OnlineCF` and `Recommender` exactly as the CF and
recommender workers do, so its numbers are those of the code that serves.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from streamrec.model.base import TextEncoder
from streamrec.model.catalog import ItemTexts
from streamrec.model.cf import OnlineCF
from streamrec.model.datasets import Dataset, Interaction
from streamrec.model.evaluation import SLICES, MetricSet, Observation
from streamrec.model.profile import UserProfile, rating_weight
from streamrec.model.recommender import Recommender

__all__ = [
    "CachedEncoder",
    "CFAdapter",
    "HybridAdapter",
    "PrequentialConfig",
    "PrequentialResult",
    "StreamRecommender",
    "StreamState",
    "TextAdapter",
    "default_recommenders",
    "run_prequential",
]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Score given to items a recommender must not (or cannot) recommend.
_EXCLUDED = -np.inf


# -- encoder cache ---------------------------------------------------------------------


class CachedEncoder:
    """A text encoder with an in-memory cache and, optionally, an on-disk one.

    Vectors are keyed by the encoder's `version` and a hash of the text, so a change of
    model or pooling never reuses stale vectors. Long review texts are the cost of an
    evaluation run; the disk cache makes a second run on the same data nearly free.

    Parameters
    ----------
    encoder
        Any `TextEncoder`.
    cache_dir
        Where to keep vectors between runs (None: memory only).
    batch_size
        Texts encoded per call to the encoder (progress is reported per batch).

    Examples
    --------
    >>> class Letters:
    ...     dim, version = 2, "letters-v1"
    ...     def encode(self, texts):
    ...         v = np.array([[t.count("a"), t.count("b")] for t in texts], dtype=np.float32) + 1e-6
    ...         return v / np.linalg.norm(v, axis=1, keepdims=True)
    >>> enc = CachedEncoder(Letters())
    >>> enc.encode(["aa", "b", "aa"]).round(2).tolist()
    [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    >>> enc.n_encoded, enc.n_cached
    (2, 1)
    """

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None = None, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.dim = encoder.dim
        self.version = encoder.version
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self._memory: dict[str, FloatArray] = {}
        self._disk_loaded = False
        self._unsaved: dict[str, FloatArray] = {}
        self.n_encoded = 0
        self.n_cached = 0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def _file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        slug = hashlib.sha1(self.version.encode(), usedforsecurity=False).hexdigest()[:16]
        return self.cache_dir / f"vectors-{slug}.npz"

    def _load_disk(self) -> None:
        self._disk_loaded = True
        path = self._file()
        if path is None or not path.is_file():
            return
        with np.load(path, allow_pickle=False) as data:
            if str(data["version"]) != self.version or data["vectors"].shape[1:] != (self.dim,):
                return
            for key, vector in zip(data["keys"].tolist(), data["vectors"], strict=True):
                self._memory.setdefault(key, vector)

    def save(self) -> None:
        """Write new vectors to the disk cache (all vectors of this version in one file)."""
        path = self._file()
        if path is None or not self._unsaved:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._memory)
        vectors = np.stack([self._memory[k] for k in keys]).astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=vectors, version=np.array(self.version))
        tmp.replace(path)
        self._unsaved.clear()

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> FloatArray:
        """Vectors of `texts`, in order; each distinct text is encoded once."""
        if not self._disk_loaded:
            self._load_disk()
        keys = [self.key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._memory and key not in missing:
                missing[key] = text
        self.n_cached += len(texts) - len(missing)
        if missing:
            # Similar lengths in one batch waste less padding.
            todo = sorted(missing.items(), key=lambda kv: len(kv[1]))
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                vectors = np.asarray(self.encoder.encode([t for _, t in chunk]), dtype=np.float32)
                for (key, _), vector in zip(chunk, vectors, strict=True):
                    self._memory[key] = vector
                    self._unsaved[key] = vector
                self.n_encoded += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            self.save()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])


# -- the shared state of the stream ----------------------------------------------------------


class StreamState:
    """What is known at the current point of the stream, shared read-only by the recommenders.

    Items get dense positions in order of first sight (catalog first), so recommenders
    can keep per-item arrays and return positions.
    """

    def __init__(self, text_dim: int) -> None:
        self.items: list[str] = []
        self.pos: dict[str, int] = {}
        self.item_counts = np.zeros(1024, dtype=np.int64)
        self.user_counts: dict[str, int] = {}
        self.seen: dict[str, dict[int, None]] = {}
        self.ts = 0.0
        self.n_events = 0
        #: Each item's text vector (catalog, folded with its reviews), the yardstick of diversity.
        self.texts = ItemTexts()
        self.text_matrix = np.zeros((1024, text_dim), dtype=np.float32)
        self.has_text = np.zeros(1024, dtype=bool)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def add_item(self, item: str) -> int:
        pos = self.pos.get(item)
        if pos is None:
            pos = len(self.items)
            self.items.append(item)
            self.pos[item] = pos
            if pos >= len(self.item_counts):
                size = 2 * len(self.item_counts)
                self.item_counts = np.concatenate([self.item_counts, np.zeros(size // 2, dtype=np.int64)])
                self.text_matrix = np.concatenate([self.text_matrix, np.zeros_like(self.text_matrix)])
                self.has_text = np.concatenate([self.has_text, np.zeros_like(self.has_text)])
        return pos

    def set_text(self, pos: int, vector: FloatArray) -> None:
        self.text_matrix[pos] = vector
        self.has_text[pos] = True

    def seen_positions(self, user: str) -> IntArray:
        seen = self.seen.get(user)
        if not seen:
            return np.zeros(0, dtype=np.int64)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    def has_seen(self, user: str, pos: int | None) -> bool:
        seen = self.seen.get(user)
        return pos is not None and seen is not None and pos in seen


# -- recommenders under evaluation -------------------------------------------------------


class StreamRecommender(ABC):
    """A recommender as the protocol drives it: rank for a user, then learn the event.

    Most recommenders score every known item (`scores`); the base class excludes seen
    items, takes the top K and reads the probe items' scores for AUC.
    """

    name: str = ""
    #: One line for the report: what it is and how it learns.
    description: str = ""

    def __init__(self) -> None:
        self.state: StreamState | None = None

    def start(self, state: StreamState, catalog: Mapping[str, tuple[str, FloatArray | None]]) -> None:
        """Called once before the stream with the catalog items (id -> (title, vector))."""
        self.state = state

    @abstractmethod
    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        """Learn one event; `vector` encodes its review text when it has one."""

    def scores(self, user: str) -> npt.NDArray[np.float64]:
        """A score per known item (position), higher is better."""
        raise NotImplementedError

    def rank(
        self, user: str, k: int, probe: IntArray | None
    ) -> tuple[IntArray, npt.NDArray[np.float64] | None]:
        """Top `k` item positions for `user` (seen items excluded), and the scores of `probe`."""
        state = self._state()
        scores = np.array(self.scores(user), dtype=np.float64)
        probe_scores = scores[probe] if probe is not None else None
        seen = state.seen_positions(user)
        if len(seen):
            scores[seen] = _EXCLUDED
        n = len(scores)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), probe_scores
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > _EXCLUDED]
        return top.astype(np.int64), probe_scores

    def predict_rating(self, user: str, item: str) -> float | None:
        return None

    def params(self) -> dict[str, Any]:
        return {}

    def _state(self) -> StreamState:
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__} must be started before use")
        return self.state


class SharedCF:
    """One `OnlineCF` learned once per event, read by every adapter that needs it.

    Keeps the implicit item vectors as a matrix aligned with the stream's item positions,
    updated from the model's changed items, so ranking all items is one product.
    """

    def __init__(self, model: OnlineCF) -> None:
        self.model = model
        self._last: int = -1
        self._changed: tuple[list[str], list[str]] = ([], [])
        self.matrix = np.zeros((1024, model.vector_size), dtype=np.float32)
        self.known = np.zeros(1024, dtype=bool)

    def step(self, state: StreamState, event: Interaction) -> tuple[list[str], list[str]]:
        """Learn `event` (once, whoever asks first); return the changed users and items."""
        if self._last != state.n_events:
            self._last = state.n_events
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

    def scores(self, state: StreamState, user: str) -> npt.NDArray[np.float64]:
        """Implicit scores of all items; items the model never learned cannot be ranked."""
        n = state.n_items
        if n > len(self.matrix):
            self._grow(n)
        matrix = self.matrix[:n]
        query = self.model.user_vector(user)
        out = matrix[:, -1].astype(np.float64) if query is None else (matrix @ query).astype(np.float64)
        out[~self.known[:n]] = _EXCLUDED
        return out

    def _grow(self, n: int) -> None:
        size = max(n, 2 * len(self.matrix))
        matrix = np.zeros((size, self.matrix.shape[1]), dtype=np.float32)
        matrix[: len(self.matrix)] = self.matrix
        known = np.zeros(size, dtype=bool)
        known[: len(self.known)] = self.known
        self.matrix, self.known = matrix, known


class CFAdapter(StreamRecommender):
    """``cf``: `OnlineCF` alone; all items ranked by its implicit score, ratings from its explicit model."""

    name = "cf"

    def __init__(self, shared: SharedCF) -> None:
        super().__init__()
        self.shared = shared
        self.description = f"OnlineCF alone: {shared.model.version}; ratings from its explicit BiasedMF"

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        self.shared.step(self._state(), event)

    def scores(self, user: str) -> npt.NDArray[np.float64]:
        return self.shared.scores(self._state(), user)

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

    def scores(self, user: str) -> npt.NDArray[np.float64]:
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
    `Recommender.recommend`; AUC reads the ranker's blended relevance.
    """

    name = "hybrid"

    def __init__(self, shared: SharedCF, text_dim: int, **recommender_params: Any) -> None:
        super().__init__()
        self.shared = shared
        self.recommender_params = recommender_params
        self.rec = Recommender(text_dim, shared.model.vector_size, **recommender_params)
        self.description = (
            "streamrec Recommender (HybridRanker: text + CF + popularity"
            + (", item-to-item" if hasattr(self.rec, "cooccurrence") else "")
            + f") fed by {shared.model.version}"
        )

    def start(self, state: StreamState, catalog: Mapping[str, tuple[str, FloatArray | None]]) -> None:
        super().start(state, catalog)
        for item, (title, vector) in catalog.items():
            self.rec.on_item(item, title, vector, ts=state.ts)

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        users, items = self.shared.step(self._state(), event)
        model, rec = self.shared.model, self.rec
        if items:
            rec.on_item_cf(items, model.item_vectors(items))
        known = [(u, v) for u in users if (v := model.user_vector(u)) is not None]
        if known:
            rec.on_user_cf([u for u, _ in known], np.stack([v for _, v in known]))
        if vector is not None:
            rec.on_item_review(event.item, vector, event.rating)
            rec.on_review(event.user, event.item, event.rating, event.ts, vector)
        elif event.rating is not None:
            rec.on_review(event.user, event.item, event.rating, event.ts, None)
        else:
            rec.on_click(event.user, event.item, "click", event.ts)

    def rank(
        self, user: str, k: int, probe: IntArray | None
    ) -> tuple[IntArray, npt.NDArray[np.float64] | None]:
        state = self._state()
        scored = self.rec.recommend([user], k)[0]
        top = np.array([state.pos[s.item_id] for s in scored if s.item_id in state.pos], dtype=np.int64)
        probe_scores = None
        if probe is not None:
            ids = [state.items[p] for p in probe]
            probe_scores = self.rec.ranker.relevance(self.rec.request(user), ids)
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
        return out


def default_recommenders(
    names: Sequence[str] | None = None,
    text_dim: int = 384,
    seed: int = 42,
    cf_params: Mapping[str, Any] | None = None,
    recommender_params: Mapping[str, Any] | None = None,
    batch_params: Mapping[str, Any] | None = None,
) -> list[StreamRecommender]:
    """The recommenders a report compares, in report order; `names` picks a subset."""
    from streamrec.model.baselines import ImplicitALS, Popular, RecentPopular

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


# -- the protocol ------------------------------------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": "time (ties shuffled with a fixed seed)",
            "scheme": "prequential: recommend for the user, score against the true item, then learn it",
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
            "seed": self.seed,
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


def run_prequential(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    encoder: TextEncoder | CachedEncoder | None,
    config: PrequentialConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PrequentialResult:
    """Run the protocol over `dataset` and return every recommender's metrics.

    `progress(phase, done, total)` is called as texts are encoded (phase ``encode``)
    and as events are processed (phase ``stream``).
    """
    config = config or PrequentialConfig()
    started = time.perf_counter()
    events = dataset.interactions
    encoder_seconds = 0.0
    cached = encoder if isinstance(encoder, CachedEncoder) or encoder is None else CachedEncoder(encoder)
    text_dim = cached.dim if cached is not None else 1
    state = StreamState(text_dim)

    # Texts are encoded up front in batches: the same vectors the encoder worker would
    # produce one message at a time, at a fraction of the cost.
    catalog_ids = list(dataset.item_texts)
    review_rows = [j for j, e in enumerate(events) if e.text]
    catalog_vectors: FloatArray | None = None
    review_vectors: dict[int, FloatArray] = {}
    if cached is not None:
        t0 = time.perf_counter()
        texts = [dataset.item_texts[i] for i in catalog_ids] + [events[j].text or "" for j in review_rows]
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress("encode", done, len(texts))

        if progress is not None:
            progress("encode", 0, len(texts))
        vectors = cached.encode(texts, progress=advance) if texts else np.zeros((0, text_dim), np.float32)
        catalog_vectors = vectors[: len(catalog_ids)]
        review_vectors = dict(zip(review_rows, vectors[len(catalog_ids) :], strict=True))
        encoder_seconds = time.perf_counter() - t0

    catalog: dict[str, tuple[str, FloatArray | None]] = {}
    for j, item in enumerate(catalog_ids):
        vector = catalog_vectors[j] if catalog_vectors is not None else None
        catalog[item] = (dataset.item_texts[item], vector)
        pos = state.add_item(item)
        if vector is not None:
            state.set_text(pos, state.texts.set_catalog(item, vector))
    if events:
        state.ts = events[0].ts
    for rec in recommenders:
        rec.start(state, catalog)

    # Every product in the loop is one vector against a small matrix: BLAS threads only add
    # synchronization, and on a busy machine their spinning costs more than the work.
    with threadpool_limits(1, "blas"):
        return _stream(
            dataset, recommenders, state, review_vectors, config, cached, started, encoder_seconds, progress
        )


def _stream(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    state: StreamState,
    review_vectors: Mapping[int, FloatArray],
    config: PrequentialConfig,
    cached: CachedEncoder | None,
    started: float,
    encoder_seconds: float,
    progress: Callable[[str, int, int], None] | None,
) -> PrequentialResult:
    events = dataset.interactions
    ks = tuple(sorted(config.ks))
    kmax = ks[-1]
    names = [r.name for r in recommenders]
    metrics = {name: {s: MetricSet(ks) for s in SLICES} for name in names}
    seconds = dict.fromkeys(names, 0.0)
    hits: dict[str, list[int]] = {name: [] for name in names}
    scored_at: list[int] = []
    rng = np.random.default_rng(config.seed)
    n_repeats = 0
    total = len(events)
    tick = max(1, total // 200)

    for n, event in enumerate(events):
        state.n_events = n
        state.ts = event.ts
        user, item = event.user, event.item
        target = state.pos.get(item)
        if state.has_seen(user, target):
            n_repeats += 1
        else:
            slices = ["all"]
            if target is None or state.item_counts[target] < config.cold_threshold:
                slices.append("cold_items")
            if state.user_counts.get(user, 0) < config.cold_threshold:
                slices.append("cold_users")
            probe = _probe(state, user, target, config.n_negatives, rng)
            scored_at.append(n)
            for rec in recommenders:
                t0 = time.perf_counter()
                top, probe_scores = rec.rank(user, kmax, probe)
                predicted = rec.predict_rating(user, item) if event.rating is not None else None
                seconds[rec.name] += time.perf_counter() - t0
                rank = None
                if target is not None:
                    where = np.flatnonzero(top == target)
                    rank = int(where[0]) + 1 if len(where) else None
                auc = None
                if probe_scores is not None and len(probe_scores) > 1:
                    pos_score, neg = probe_scores[0], probe_scores[1:]
                    auc = float(((neg < pos_score).sum() + 0.5 * (neg == pos_score).sum()) / len(neg))
                obs = Observation(
                    recommended=top.tolist(),
                    rank=rank,
                    auc=auc,
                    diversity=_diversity(state, top, ks),
                    rating=(predicted, event.rating)
                    if predicted is not None and event.rating is not None
                    else None,
                )
                for s in slices:
                    metrics[rec.name][s].observe(obs)
                hits[rec.name].append(1 if rank is not None and rank <= ks[0] else 0)
        # -- then train ----------------------------------------------------------------
        pos = state.add_item(item)
        vector = review_vectors.get(n)
        if vector is not None:
            state.set_text(pos, state.texts.add_review(item, vector, rating_weight(event.rating)))
        for rec in recommenders:
            t0 = time.perf_counter()
            rec.learn(event, vector)
            seconds[rec.name] += time.perf_counter() - t0
        state.item_counts[pos] += 1
        state.user_counts[user] = state.user_counts.get(user, 0) + 1
        state.seen.setdefault(user, {})[pos] = None
        if progress is not None and (n % tick == 0 or n == total - 1):
            progress("stream", n + 1, total)

    if cached is not None:
        cached.save()
    n_items = state.n_items
    results = {name: {s: _rounded(m.result(n_items)) for s, m in metrics[name].items()} for name in names}
    protocol = config.as_dict()
    protocol.update(
        {
            "n_events": total,
            "n_scored": len(scored_at),
            "n_repeats_not_scored": n_repeats,
            "n_items_known_at_end": n_items,
            "encoder": cached.version if cached is not None else None,
            "encoder_seconds": round(encoder_seconds, 1),
            "texts_encoded": cached.n_encoded if cached is not None else 0,
            "texts_from_cache": cached.n_cached if cached is not None else 0,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    )
    return PrequentialResult(
        dataset=dataset.summary(),
        protocol=protocol,
        recommenders=results,
        descriptions={r.name: r.description for r in recommenders},
        params={r.name: r.params() for r in recommenders},
        seconds=seconds,
        event_index=np.array(scored_at, dtype=np.int64),
        hits={name: np.array(h, dtype=np.uint8) for name, h in hits.items()},
    )


def _probe(
    state: StreamState, user: str, target: int | None, n_negatives: int, rng: np.random.Generator
) -> IntArray | None:
    """The true item's position followed by sampled negatives, or None when it is unknown."""
    if target is None or n_negatives <= 0 or state.n_items < 2:
        return None
    seen = state.seen.get(user, {})
    draw = rng.integers(0, state.n_items, size=2 * n_negatives + len(seen) // 4 + 8)
    negatives = [int(p) for p in draw if p != target and p not in seen]
    if not negatives:
        return None
    return np.array([target, *negatives[:n_negatives]], dtype=np.int64)


def _diversity(state: StreamState, top: IntArray, ks: tuple[int, ...]) -> dict[int, float | None]:
    described = state.has_text[top] if len(top) else np.zeros(0, dtype=bool)
    if described.sum() < 2:
        return dict.fromkeys(ks, None)
    rows = top[described]
    sims = state.text_matrix[rows] @ state.text_matrix[rows].T
    within = np.cumsum(described)  # described items among the first k
    out: dict[int, float | None] = {}
    for k in ks:
        n = int(within[min(k, len(top)) - 1])
        if n < 2:
            out[k] = None
            continue
        block = sims[:n, :n]
        out[k] = 1.0 - (float(block.sum()) - float(np.trace(block))) / (n * (n - 1))
    return out


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}
