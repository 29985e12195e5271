"""The contract every recommender of the evaluation keeps, checked over each of them (as river's
`checks/` do for its estimators): a pickle round-trip changes nothing, the same seed gives the
same result, scoring unseen ids grows no state, and the ranking agrees with the scores."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from streamrec.eval.adapters import HybridAdapter
from streamrec.eval.base import EXCLUDED, StreamRecommender
from streamrec.eval.interactions import Interaction
from streamrec.eval.registry import RECOMMENDERS, default_recommenders
from streamrec.eval.stream import StreamState
from tests.eval.test_prequential import HashEncoder

DIM = HashEncoder.dim
ENCODER = HashEncoder()


def _events() -> list[Interaction]:
    """Two tastes over twelve items, with reviews and ratings on some events."""
    rng = np.random.default_rng(7)
    events = []
    for n in range(160):
        user = f"u{rng.integers(12)}"
        taste = "guitar" if int(user[1:]) % 2 else "drum"
        item = f"{taste}{rng.integers(6)}"
        text = f"{taste} sounds great, {rng.choice(['warm', 'bright', 'loud'])}" if n % 3 == 0 else None
        rating = float(rng.integers(1, 6)) if n % 2 == 0 else None
        events.append(Interaction(user, item, float(n * 60), rating, text))
    return events


def _fed(name: str, events: list[Interaction], seed: int = 3) -> tuple[StreamRecommender, StreamState]:
    """A recommender driven through `events` as the protocol drives it (learning only)."""
    (rec,) = default_recommenders([name], text_dim=DIM, seed=seed, batch_params={"retrain_every": 40})
    state = StreamState(DIM)
    catalog = {
        f"{t}{i}": (f"{t} {i}", ENCODER.encode([f"{t} {i}"])[0]) for t in ("guitar", "drum") for i in range(6)
    }
    for item, (_, vector) in catalog.items():
        state.set_text(state.add_item(item), vector)
    rec.start(state, catalog)
    for n, event in enumerate(events):
        state.n_events, state.ts = n, event.ts
        pos = state.add_item(event.item)
        vector = ENCODER.encode([event.text])[0] if event.text else None
        rec.learn(event, vector)
        state.item_counts[pos] += 1
        state.user_counts[event.user] = state.user_counts.get(event.user, 0) + 1
        state.seen.setdefault(event.user, {})[pos] = None
    return rec, state


def _ranks(rec: StreamRecommender, users: list[str]) -> list[list[int]]:
    return [rec.rank(user, 5, None)[0].tolist() for user in users]


USERS = ["u0", "u1", "u5", "nobody"]


@pytest.mark.parametrize("name", RECOMMENDERS)
def test_a_pickle_round_trip_ranks_the_same(name: str) -> None:
    rec, _ = _fed(name, _events())
    copy = pickle.loads(pickle.dumps(rec))
    assert _ranks(copy, USERS) == _ranks(rec, USERS)


@pytest.mark.parametrize("name", RECOMMENDERS)
def test_the_same_seed_gives_the_same_result(name: str) -> None:
    events = _events()
    (a, _), (b, _) = _fed(name, events), _fed(name, events)
    assert _ranks(a, USERS) == _ranks(b, USERS)
    probe = np.arange(6, dtype=np.int64)
    np.testing.assert_array_equal(a.rank("u1", 5, probe)[1], b.rank("u1", 5, probe)[1])


#: Rows whose ranking is also an event: each list they rank is shown to its user (an impression).
SHOWING = ("hybrid_impressions", "hybrid_impressions_no_cf")


@pytest.mark.parametrize("name", [n for n in RECOMMENDERS if n not in SHOWING])
def test_scoring_unseen_ids_grows_no_state(name: str) -> None:
    rec, _ = _fed(name, _events())
    before = pickle.dumps(rec)
    for user in ("stranger", "another"):
        rec.rank(user, 5, np.arange(4, dtype=np.int64))
        rec.predict_rating(user, "unheard-of")
    assert pickle.dumps(rec) == before


@pytest.mark.parametrize("name", SHOWING)
def test_a_row_that_shows_its_lists_remembers_what_it_showed(name: str) -> None:
    rec, _ = _fed(name, _events())
    assert isinstance(rec, HybridAdapter)
    top, _ = rec.rank(USERS[0], 5, None)
    assert len(top) and set(rec.rec.profile(USERS[0]).shown) >= {rec._state().items[p] for p in top}


@pytest.mark.parametrize("name", [n for n in RECOMMENDERS if not n.startswith("hybrid")])
def test_the_top_k_are_the_best_scored_unseen_items(name: str) -> None:
    rec, state = _fed(name, _events())
    for user in USERS:
        scores = np.array(rec.scores(user), dtype=np.float64)
        top, probe_scores = rec.rank(user, 5, np.arange(state.n_items, dtype=np.int64))
        assert probe_scores is not None
        np.testing.assert_array_equal(probe_scores, scores)  # the scores it reports are its scores
        seen = set(state.seen_positions(user).tolist())
        assert not seen & set(top.tolist())
        rest = [p for p in range(state.n_items) if p not in seen and p not in set(top.tolist())]
        listed = scores[top]
        assert all(listed[:-1] >= listed[1:]), "best first"
        assert not rest or listed.min() >= scores[rest].max() or listed.min() == EXCLUDED


@pytest.mark.parametrize("name", [n for n in RECOMMENDERS if n.startswith("hybrid")])
def test_the_hybrid_lists_by_the_scores_it_reports_when_it_does_not_diversify(name: str) -> None:
    events = _events()
    rec, _ = _fed(name, events)
    assert isinstance(rec, HybridAdapter)
    rec.rec.ranker.mmr_lambda = 1.0
    for user in USERS:
        scores = [s.score for s in rec.rec.recommend([user], 8)[0]]
        assert scores == sorted(scores, reverse=True), user
