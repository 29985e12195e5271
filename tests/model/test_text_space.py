"""The text space: centred on the catalog, mapped again as the catalog grows, not per item."""

from __future__ import annotations

import numpy as np

from streamrec.model.serving.recommender import Recommender


def test_a_catalog_loaded_item_by_item_is_mapped_again_a_few_times_and_ends_centred() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=16) * 3  # what every item's text has in common
    rec = Recommender(text_dim=16, cf_dim=3, item_model=False)
    vectors = (shared + rng.normal(size=(2_000, 16))).astype(np.float32)
    for n, vector in enumerate(vectors):
        rec.on_item(f"i{n}", f"i{n}", vector, ts=0)
    assert rec.space.remaps < 80
    held = np.stack(list(rec.index.get("text", [f"i{n}" for n in range(2_000)]).values()))
    raw = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    # The common part is gone from what the ranker compares: cosines spread around 0, not near 1.
    assert abs(float((held @ held.mean(axis=0)).mean())) < 0.1 < float((raw @ raw.mean(axis=0)).mean())
    # Profiles gather the encoder's own vectors; the ranker maps the user's as it maps the items'.
    np.testing.assert_allclose(rec.item_text("i7"), raw[7], atol=1e-6)
    rec.on_click("ann", "i7", "click", ts=1)
    user = rec.user_text("ann")
    assert user is not None and float(user @ held[7]) > 0.99


def test_without_centring_the_index_holds_the_encoders_vectors() -> None:
    rec = Recommender(text_dim=2, cf_dim=3, item_model=False, centre_text=False)
    rec.on_item("a", "A", np.array([3.0, 4.0], dtype=np.float32), ts=0)
    np.testing.assert_allclose(rec.index.get("text", ["a"])["a"], [0.6, 0.8], atol=1e-6)
