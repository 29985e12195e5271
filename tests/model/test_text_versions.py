"""A recommender moving from one encoder's text vectors to another's, of another dimension."""

from __future__ import annotations

import numpy as np

from streamrec.model.events.schemas import Click, Trigger
from streamrec.model.serving.recommender import Recommender
from streamrec.model.serving.service import Serving
from streamrec.model.text.reviews import EncodedReview


def v(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


def review(key: bytes, item: str, vector: np.ndarray, version: str, user: str = "ann") -> EncodedReview:
    trigger = Trigger(topic="reviews", partition=0, offset=0, ts=1.0)
    return EncodedReview(user, item, 5.0, 1.0, None, vector, version, trigger, key=key, identity=key.decode())


def build() -> tuple[Recommender, Serving]:
    rec = Recommender(text_dim=384, cf_dim=3)
    # The first versioned vectors name the text space's dimension, whatever the settings said.
    rec.on_item("guitar", "Guitar", v(1, 0), ts=0, version="old")
    rec.on_item("violin", "Violin", v(0.9, 0.1), ts=0, version="old")
    rec.on_item("drum", "Drum", v(0, 1), ts=0, version="old")
    serving = Serving(rec)
    click = Click(user_id="ann", item_id="guitar", event="click", ts=1.0)
    serving.click(click, Trigger(topic="clicks", partition=0, offset=0, ts=1.0))
    return rec, serving


def test_a_new_encoder_is_staged_apart_and_serves_from_the_switch() -> None:
    rec, serving = build()
    assert rec.text_dim == 2 and rec.versions.active == "old"
    before = [s.item_id for s in serving.answer(["ann"], k=2)[0]]
    assert before == ["violin", "drum"]

    # The new encoder (3 dims) reads the catalog again: nothing it wrote serves yet.
    rec.on_item("guitar", "Guitar", v(0, 0, 1), ts=0, version="new")
    rec.on_item("drum", "Drum", v(0, 0.1, 1), ts=0, version="new")
    rec.on_item("violin", "Violin", v(1, 0, 0), ts=0, version="new")
    # ... and a review it read again folds into the staging, not into what serves.
    assert serving.fold_review(review(b"ann\x1fr1", "drum", v(0, 0.2, 1), "new"), 0)
    assert rec.text_dim == 2 and rec.versions.staged is not None
    assert [s.item_id for s in serving.answer(["ann"], k=2)[0]] == before

    lost = serving.switch_text("new")
    assert lost == []
    assert rec.text_dim == 3 and rec.versions.active == "new" and rec.versions.staged is None
    assert rec.index.spaces["text"].dim == 3
    # The profile moves to the new space when read: now the drum is nearest to the guitar.
    assert [s.item_id for s in serving.answer(["ann"], k=2)[0]] == ["drum", "violin"]
    assert rec.profile("ann").text_version == "new"
    assert rec.profile("ann").text_vector().shape == (3,)

    # A vector of the old encoder, arriving late, is passed over.
    rec.on_item("drum", "Drum", v(1, 0), ts=0, version="old")
    assert rec.index.get("text", ["drum"])["drum"].shape == (3,)


def test_a_review_vector_folded_while_staged_is_taken_back_with_its_author() -> None:
    rec, serving = build()
    rec.on_item("drum", "Drum", v(0, 0, 1), ts=0, version="new")
    # A new review, read by the new encoder while the old one serves: counted now, folded at the switch.
    assert serving.fold_review(review(b"bob\x1fr2", "drum", v(1, 0, 0), "new", user="bob"), 0)
    serving.switch_text("new")
    folded = rec.index.get("text", ["drum"])["drum"]
    assert folded[0] > 0  # the review pulls the drum's vector
    [(key, _)] = serving.forget("bob").reviews
    assert serving.unfold_review(key) == "drum"
    np.testing.assert_allclose(rec.item_text("drum"), v(0, 0, 1), atol=1e-6)
    # Items the new encoder read nothing of have no text vector: never one of the old space.
    assert not rec.index.has("text", "guitar")


def test_a_replay_that_meets_the_new_version_first_settles_on_it() -> None:
    rec = Recommender(text_dim=2, cf_dim=3)
    rec.on_item("guitar", "Guitar", v(0, 0, 1), ts=0, version="new")
    rec.on_item("drum", "Drum", v(0, 1), ts=0, version="old")  # not yet compacted away
    assert rec.versions.active == "new" and rec.versions.staged is not None
    assert not rec.versions.settle("new")  # the encoder's marker: "new" is current
    assert rec.versions.staged is None and "old" in rec.versions.retired
    rec.on_item("drum", "Drum", v(0, 1), ts=0, version="old")
    assert not rec.index.has("text", "drum")


def test_a_forgotten_reviewer_stays_out_when_a_new_encoder_reads_the_topics_again() -> None:
    rec, serving = build()
    assert serving.fold_review(review(b"bob\x1fr9", "drum", v(1, 0), "old", user="bob"), 0)
    [(key, _)] = serving.forget("bob").reviews
    assert serving.unfold_review(key) == "drum"
    # The new encoder read the review again from `reviews`, which producers own.
    again = review(b"bob\x1fr9", "drum", v(0, 0, 1), "new", user="bob")
    assert not serving.fold_review(EncodedReview(**{**again.__dict__, "reencoded": True}), 0)
    assert rec.versions.staged is None or key not in rec.versions.staged.reviews


def test_a_profile_stored_before_versions_were_named_is_of_the_first_one() -> None:
    rec, serving = build()
    stored = rec.profile("ann")
    stored.text_version = ""
    before = stored.text_vector().copy()
    rec.profiles["ann"] = stored
    assert rec.profile("ann").text_version == "old"
    np.testing.assert_array_equal(rec.profile("ann").text_vector(), before)
