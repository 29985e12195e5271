"""Online collaborative filtering: river matrix factorization learned one event at a time."""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.cf import factors, ratings
from streamrec.model.users import exposure

__all__ = ["OnlineCF"]

ItemId = TypeVar("ItemId", bound=Hashable)


class OnlineCF:
    """Two river `BiasedMF` models, updated on every event.

    * `implicit` learns that a user interacted with an item (a click, a review) as a
      positive, against `n_negatives` items sampled uniformly from the catalog seen so
      far, with the logistic loss. Its scores rank items.
    * `explicit` learns ratings (1-5) with the squared loss and predicts them, on top of
      a baseline of shrunk running means: the global mean, the item's mean deviation
      from it (shrunk by `item_shrinkage` ratings) and the user's mean deviation from
      both (shrunk by `user_shrinkage`). The factor model learns what the baseline
      misses. Running means settle on a new user's or item's level within a few
      ratings, where SGD on biases needs dozens: this is most of the error on a stream,
      where new users and items keep arriving.

    Scoring never adds users or items to the state (river's own `predict_one` would,
    through its `defaultdict`s), so serving unknown ids is free.

    For retrieval by inner product (Qdrant `Dot`), the implicit score is exposed as
    vectors: `user_vector(u) = [p_u, 1]` and `item_vector(i) = [q_i, b_i]`, so that
    their dot product is `p_u . q_i + b_i`, the score up to the user's constant terms.

    Parameters
    ----------
    n_factors
        Latent dimensions of the implicit model.
    n_negatives
        Negative items sampled per positive interaction.
    lr
        Learning rate of the implicit model.
    l2
        L2 penalty of the implicit model's latent factors.
    rating_factors
        Latent dimensions of the explicit (rating) model.
    rating_lr
        Learning rate of the explicit model's latent factors (biases use half).
    rating_range
        Predicted ratings are clipped to this range.
    user_shrinkage, item_shrinkage
        Pseudo-ratings at the global level that a user's (item's) mean deviation is
        shrunk with; larger values trust few ratings less.
    seed
        Seeds the initializers and the negative sampler.

    Examples
    --------
    >>> cf = OnlineCF(seed=1)
    >>> for _ in range(30):
    ...     for user, item in [("ann", "guitar"), ("bob", "guitar"), ("bob", "drum"), ("cat", "flute")]:
    ...         cf.learn_one(user, item)
    >>> cf.predict_one("ann", "guitar") > cf.predict_one("ann", "flute")
    True
    >>> cf.learn_one("ann", "guitar", 5.0)
    >>> 1.0 <= cf.predict_rating("ann", "guitar") <= 5.0
    True
    >>> n = cf.n_users
    >>> _ = cf.predict_one("zoe", "guitar"); cf.n_users == n
    True
    """

    def __init__(
        self,
        n_factors: int = 16,
        n_negatives: int = 4,
        lr: float = 0.05,
        l2: float = 0.001,
        rating_factors: int = 10,
        rating_lr: float = 0.05,
        rating_range: tuple[float, float] = (1.0, 5.0),
        user_shrinkage: float = 10.0,
        item_shrinkage: float = 25.0,
        seed: int = 42,
    ) -> None:
        self.n_factors = n_factors
        self.n_negatives = n_negatives
        self.lr = lr
        self.l2 = l2
        self.rating_factors = rating_factors
        self.rating_lr = rating_lr
        self.rating_range = rating_range
        self.user_shrinkage = user_shrinkage
        self.item_shrinkage = item_shrinkage
        self.seed = seed
        self.implicit = factors.implicit_model(n_factors, lr, l2, seed)
        self.explicit = factors.rating_model(rating_factors, rating_lr, seed + 1)
        # Baseline of the explicit model: sums and counts of deviations (see `_baseline`).
        self._rating_sum = 0.0
        self._rating_n = 0
        self._user_dev: dict[Hashable, list[float]] = {}
        self._item_dev: dict[Hashable, list[float]] = {}
        self._rng = random.Random(seed)
        self._items: list[Hashable] = []
        self._item_pos: dict[Hashable, int] = {}
        #: Item rows `[q_i, b_i]` as they were before local learning changed them since
        #: the last `take_item_deltas`: what this worker has to share.
        self._shared_base: dict[Hashable, FloatArray] = {}
        self.n_learned = 0
        #: Per user, items they were shown since their last take (`learn_exposure`): where the
        #: negatives of their next take are drawn from, as often as the user takes from lists.
        self._exposed: dict[Hashable, list[Hashable]] = {}
        #: Per user, takes after an impression: `[from what was shown, all]` (`model.exposure`).
        self._list_takes: dict[Hashable, list[float]] = {}
        #: The same over all users: the prior of each one's.
        self._habits = exposure.Habits()
        #: Users and items whose implicit vectors changed since `drain_changed`.
        self.changed_users: set[Hashable] = set()
        self.changed_items: set[Hashable] = set()

    # -- learning -----------------------------------------------------------------

    def learn_one(self, user: Hashable, item: Hashable, y: float | None = None) -> None:
        """Learn one interaction; `y` is a rating when there is one."""
        if item not in self._item_pos:
            self._add_item(item)
        implicit = self.implicit
        shared = self._shared_base
        if item not in shared:
            shared[item] = self._item_row(item)
        implicit.learn_one(user, item, True)  # type: ignore[no-untyped-call]
        items = self._items
        exposed = self._exposed.pop(user, None)
        shown: list[Hashable] = []
        attention = 0.0
        if exposed:
            counts = self._list_takes.setdefault(user, [0.0, 0.0])
            counts[0] += item in exposed
            counts[1] += 1
            self._habits.took(item in exposed)
            attention = self._habits.of(*counts)
            shown = [i for i in exposed if i != item and i in self._item_pos]
        if len(items) > 1:
            rand = self._rng.random
            n = len(items)
            for _ in range(self.n_negatives):
                # Shown and passed over, as often as the user takes from what they are shown;
                # otherwise drawn from the catalog.
                if shown and rand() < attention:
                    negative = shown[int(rand() * len(shown))]
                else:
                    negative = items[int(rand() * n)]
                if negative != item:
                    if negative not in shared:
                        shared[negative] = self._item_row(negative)
                    implicit.learn_one(user, negative, False)  # type: ignore[no-untyped-call]
                    self.changed_items.add(negative)
        if y is not None:
            self._learn_rating(user, item, float(y))
        self.changed_users.add(user)
        self.changed_items.add(item)
        self.n_learned += 1

    def learn_exposure(self, user: Hashable, shown: Sequence[Hashable]) -> None:
        """Items were shown to a user (an impression): the negatives of their next take are drawn
        from what they were shown since their last take (and did not take), in the share of their
        takes that come from what they are shown, and from the catalog otherwise. A shown item
        passed over is a likelier negative than a random one; no step is added, so it stays a weak
        one.

        >>> cf = OnlineCF(n_negatives=2)
        >>> for item in ("a", "b", "c"): cf.learn_one("ann", item)
        >>> cf.learn_exposure("ann", ["b", "c"]); cf.learn_one("ann", "c"); "ann" in cf._exposed
        False
        """
        if shown:
            before = self._exposed.get(user, [])
            self._exposed[user] = list(dict.fromkeys([*before, *shown]))[-exposure.MAX_SHOWN :]

    def learn_negative(self, user: Hashable, item: Hashable, y: float | None = None) -> None:
        """Learn that a user did not want an item (a 1-2 star review, a `dislike`): a negative.

        The item is known from then on, like any other; `y`, a rating, is learned as a rating.
        """
        if item not in self._item_pos:
            self._add_item(item)
        if item not in self._shared_base:
            self._shared_base[item] = self._item_row(item)
        self.implicit.learn_one(user, item, False)  # type: ignore[no-untyped-call]
        if y is not None:
            self._learn_rating(user, item, float(y))
        self.changed_users.add(user)
        self.changed_items.add(item)
        self.n_learned += 1

    def _learn_rating(self, user: Hashable, item: Hashable, y: float) -> None:
        mean, item_dev, user_dev = self._baseline(user, item)
        self.explicit.learn_one(user, item, y - (mean + item_dev + user_dev))  # type: ignore[no-untyped-call]
        ratings.add_deviation(self._item_dev, item, y - mean)
        ratings.add_deviation(self._user_dev, user, y - mean - item_dev)
        self._rating_sum += y
        self._rating_n += 1

    def _baseline(self, user: Hashable, item: Hashable) -> tuple[float, float, float]:
        """Global mean, shrunk item deviation, shrunk user deviation (after the item's)."""
        mean = self._rating_sum / self._rating_n if self._rating_n else sum(self.rating_range) / 2
        item_dev = ratings.shrunk(self._item_dev, item, self.item_shrinkage)
        return mean, item_dev, ratings.shrunk(self._user_dev, user, self.user_shrinkage)

    def holds(self, user: Hashable) -> list[str]:
        """What the model holds of a user, in words (nothing once `forget_user` has run).

        >>> cf = OnlineCF(); cf.learn_one("ann", "a", 4.0); cf.learn_one("bob", "a")
        >>> cf.holds("ann")
        ['implicit factors', 'rating factors', 'rating baseline']
        >>> cf.forget_user("ann"), cf.holds("ann")
        (True, [])
        """
        parts = {
            "implicit factors": user in self.implicit.u_latents or user in self.implicit.u_biases,
            "rating factors": user in self.explicit.u_latents or user in self.explicit.u_biases,
            "rating baseline": user in self._user_dev,
            "items shown": user in self._exposed,
            "takes from what was shown": user in self._list_takes,
        }
        return [name for name, held in parts.items() if held]

    def forget_user(self, user: Hashable) -> bool:
        """Drop a user's factors, biases and rating baseline; True if there were any."""
        found = self._user_dev.pop(user, None) is not None
        found = self._exposed.pop(user, None) is not None or found
        counts = self._list_takes.pop(user, None)
        if counts is not None:
            self._habits.untake(*counts)
            found = True
        for model in (self.implicit, self.explicit):
            for table in (model.u_latents, model.u_biases):
                if user in table:
                    del table[user]
                    found = True
        self.changed_users.discard(user)
        return found

    # -- scoring ------------------------------------------------------------------

    @property
    def n_users(self) -> int:
        return len(self.implicit.u_latents)

    @property
    def n_items(self) -> int:
        return len(self._items)

    def knows_user(self, user: Hashable) -> bool:
        return user in self.implicit.u_latents

    def knows_item(self, item: Hashable) -> bool:
        return item in self._item_pos

    def predict_one(self, user: Hashable, item: Hashable) -> float:
        """Implicit score (a logit): higher means more likely to interact."""
        return float(self.implicit.i_biases.get(item, 0.0) + factors.interaction(self.implicit, user, item))

    def predict_rating(self, user: Hashable, item: Hashable) -> float:
        """Predicted rating (baseline plus factor model), clipped to `rating_range`."""
        model = self.explicit
        rating = sum(self._baseline(user, item))
        rating += model.u_biases.get(user, 0.0) + model.i_biases.get(item, 0.0)
        rating += factors.interaction(model, user, item)
        low, high = self.rating_range
        return float(min(max(rating, low), high))

    def rank(self, user: Hashable, items: Sequence[Hashable]) -> list[Hashable]:
        """Items sorted by implicit score, best first."""
        scores = self.score_items(user, items)
        order = np.argsort(-scores, kind="stable")
        return [items[i] for i in order]

    def score_items(self, user: Hashable, items: Sequence[Hashable]) -> FloatArray:
        """Implicit scores of many items for one user, vectorized."""
        if not items:
            return np.zeros(0, dtype=np.float32)
        vectors = self.item_vectors(items)
        query = self.user_vector(user)
        if query is None:
            return vectors[:, -1].copy()
        return vectors @ query

    # -- vectors for retrieval ----------------------------------------------------

    @property
    def vector_size(self) -> int:
        return factors.vector_size(self.n_factors)

    def user_vector(self, user: Hashable) -> FloatArray | None:
        return factors.user_row(self.implicit, user, self.n_factors)

    def item_vector(self, item: Hashable) -> FloatArray | None:
        if item not in self._item_pos:
            return None
        row: FloatArray = self.item_vectors([item])[0]
        return row

    def item_vectors(self, items: Iterable[Hashable]) -> FloatArray:
        """Rows `[q_i, b_i]`; unknown items get zeros (no score but their absence)."""
        return factors.item_rows(self.implicit, items, self.n_factors)

    def __setstate__(self, state: dict[str, object]) -> None:
        # Checkpoints pickled before the rating baseline existed load with an empty one.
        defaults = {"user_shrinkage": 10.0, "item_shrinkage": 25.0, "_rating_sum": 0.0, "_rating_n": 0}
        self.__dict__.update(defaults)
        self.__dict__.update(state)
        self.__dict__.setdefault("_user_dev", {})
        self.__dict__.setdefault("_item_dev", {})
        self.__dict__.setdefault("_exposed", {})
        self.__dict__.setdefault("_list_takes", {})
        self.__dict__.setdefault("_habits", exposure.Habits())

    # -- sharing item factors between workers -------------------------------------

    def _add_item(self, item: Hashable) -> None:
        """Register an item; its factors start from a value derived from its id alone, so
        that every worker starts an item from the same point."""
        self._item_pos[item] = len(self._items)
        self._items.append(item)
        self.implicit.i_latents[item] = factors.start_latent(item, self.n_factors)

    def _item_row(self, item: Hashable) -> FloatArray:
        return factors.item_row(self.implicit, item)

    def take_item_deltas(self) -> dict[Hashable, FloatArray]:
        """What local learning changed in the implicit item factors since the last call.

        Rows `[dq_i, db_i]`. Workers that share their deltas and apply each other's keep
        one set of item factors: each item is its initial value plus every worker's
        changes, whichever worker holds it.
        """
        out = {item: self._item_row(item) - base for item, base in self._shared_base.items()}
        self._shared_base = {}
        return out

    def apply_item_deltas(self, deltas: Mapping[ItemId, FloatArray]) -> None:
        """Add another worker's item changes (from `take_item_deltas`)."""
        model = self.implicit
        for item, delta in deltas.items():
            if item not in self._item_pos:
                self._add_item(item)
            delta = np.asarray(delta, dtype=np.float32)
            model.i_latents[item] = model.i_latents[item] + delta[:-1]
            model.i_biases[item] = model.i_biases[item] + float(delta[-1])
            base = self._shared_base.get(item)
            if base is not None:
                self._shared_base[item] = base + delta  # not ours: never shared back
            self.changed_items.add(item)

    def drain_changed(self) -> tuple[set[Hashable], set[Hashable]]:
        """Return and reset the users and items whose vectors changed."""
        users, items = self.changed_users, self.changed_items
        self.changed_users, self.changed_items = set(), set()
        return users, items

    @property
    def version(self) -> str:
        return f"river.BiasedMF(implicit,f={self.n_factors},neg={self.n_negatives})"
