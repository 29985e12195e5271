"""The item model refit in a child process: the same weights as a fit on the loop, installed
later; a fit on the spot (a user forgotten) makes one begun before it stale."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from streamrec.model.serving.recommender import Recommender
from streamrec.streams.forked import InChild
from streamrec.streams.kafka.checkpoint import can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="processes cannot fork here")

ITEMS = 60


def _recommender() -> Recommender:
    rec = Recommender(text_dim=8, cf_dim=3, item_model_every=100, item_model_items=ITEMS)
    rng = np.random.default_rng(7)
    for n in range(ITEMS):
        rec.on_item(f"i{n}", f"item {n}", rng.normal(size=8).astype(np.float32), ts=0.0)
    return rec


def _clicks(rec: Recommender, start: int, count: int) -> None:
    """Users who take items near one another: weights worth learning."""
    rng = np.random.default_rng(start)
    for n in range(start, start + count):
        user = f"u{n % 40}"
        item = f"i{(n % 40 + int(rng.integers(0, 6))) % ITEMS}"
        rec.on_click(user, item, "click", ts=float(n))


async def _settle(fits: InChild) -> None:
    deadline = time.monotonic() + 30
    while fits.running and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not fits.running, "the child's fit never came back"


def test_a_fit_in_a_child_installs_what_a_fit_on_the_spot_learns() -> None:
    async def run() -> tuple[Recommender, int]:
        rec = _recommender()
        fits = InChild("item model fit")
        rec.fit_elsewhere = fits
        _clicks(rec, 0, 100)  # the first fit is due at 100 events
        model = rec.ranker.item_model
        assert model is not None
        # Begun, not installed: the events that called for it did not wait for it.
        assert fits.running == 1 and model.n_fits == 0
        await _settle(fits)
        return rec, model.n_fits

    rec, n_fits = asyncio.run(run())
    assert n_fits == 1
    model = rec.ranker.item_model
    assert model is not None
    here = _recommender()
    _clicks(here, 0, 100)  # fitted on the spot, from the same takes
    expected = here.ranker.item_model
    assert expected is not None and expected.n_fits == 1
    assert model.items == expected.items
    np.testing.assert_array_equal(model._b, expected._b)
    np.testing.assert_array_equal(model._m, expected._m)


def test_a_fit_on_the_spot_makes_one_begun_before_it_stale() -> None:
    async def run() -> Recommender:
        rec = _recommender()
        fits = InChild("item model fit")
        rec.fit_elsewhere = fits
        _clicks(rec, 0, 100)
        assert fits.running == 1
        # A user is forgotten while the child fits: the weights are learned again without them,
        # and the child's, learned with them, must not replace those.
        rec.forget("u3")
        await _settle(fits)
        return rec

    rec = asyncio.run(run())
    model = rec.ranker.item_model
    assert model is not None
    here = _recommender()
    _clicks(here, 0, 100)
    here.forget("u3")
    expected = here.ranker.item_model
    assert expected is not None
    np.testing.assert_array_equal(model._b, expected._b)
    assert model.n_fits == 1  # the fit on the spot; the child's result was dropped


def test_a_child_that_fails_or_hangs_hands_back_nothing_and_the_next_one_runs() -> None:
    def fails() -> None:
        raise RuntimeError("a fit that fails")

    async def run() -> tuple[list[object], float]:
        fits = InChild("item model fit", timeout_s=1)
        results: list[object] = []
        started = time.monotonic()
        fits(fails, results.append)
        fits(lambda: time.sleep(30), results.append)  # stopped after a second
        await _settle(fits)
        fits(lambda: 42, results.append)
        await _settle(fits)
        return results, time.monotonic() - started

    results, seconds = asyncio.run(run())
    assert results == [None, None, 42]
    assert seconds < 10


def test_no_child_to_be_had_hands_back_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork refused (no memory or processes left): the work is not done, the caller is told."""

    def refused() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr("os.fork", refused)
    results: list[object] = []

    async def run() -> None:
        InChild("item model fit")(lambda: 42, results.append)

    asyncio.run(run())
    assert results == [None]


def test_children_work_at_most_their_share_of_the_time() -> None:
    """After a child that took `t`, the next is turned down for `t * (1 / duty - 1)`: here as long
    as it took; then one runs again."""

    def work() -> int:
        time.sleep(0.3)
        return 42

    async def run() -> list[object]:
        fits = InChild("item model fit", duty=0.5)
        results: list[object] = []
        fits(work, results.append)
        await _settle(fits)
        fits(work, results.append)  # at once: turned down, nothing run
        assert fits.running == 0
        rest = fits.resting_s
        assert 0.25 < rest < 30  # as long as the child took: its 0.3 s of work and its hand-back
        await asyncio.sleep(rest + 0.05)
        assert fits.resting_s == 0.0
        fits(work, results.append)
        await _settle(fits)
        return results

    assert asyncio.run(run()) == [42, None, 42]
