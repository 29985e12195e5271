"""CF vectors generated from content: a new item is ranked by CF before its first take."""

from __future__ import annotations

import numpy as np

from streamrec.model.cf.content import ContentToCF
from streamrec.model.serving.recommender import Recommender


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_a_new_item_gets_the_cf_vector_its_text_predicts_then_its_own() -> None:
    rng = np.random.default_rng(0)
    text_dim, cf_dim = 12, 4
    truth = rng.normal(size=(text_dim, cf_dim))
    rec = Recommender(text_dim, cf_dim, content_full_takes=3)
    texts = _unit(rng.normal(size=(60, text_dim)))
    items = [f"i{n}" for n in range(60)]
    for item, text in zip(items, texts, strict=True):
        rec.on_item(item, item, text, ts=0)
        for _ in range(3):
            rec.on_click(f"u{item}", item, "click", ts=1)
    rec.on_item_cf(items, (texts @ truth).astype(np.float32))
    assert rec.content_cf is not None and len(rec.content_cf) == 60

    new_text = _unit(rng.normal(size=text_dim))
    rec.on_item("new", "new", new_text, ts=2)  # no take, no CF vector from CF
    (generated,) = rec.index.get("cf", ["new"]).values()
    expected = new_text @ truth
    assert np.dot(generated, expected) / (np.linalg.norm(generated) * np.linalg.norm(expected)) > 0.95

    learned = np.ones(cf_dim, dtype=np.float32)
    rec.on_click("ann", "new", "click", ts=3)
    rec.on_item_cf(["new"], learned[None, :])
    (once,) = rec.index.get("cf", ["new"]).values()
    share = 1 / 3  # one take of three
    read = rec.index.get("text", ["new"])["new"]  # its text as the index holds it (centred)
    blend = share * learned + (1 - share) * rec.content_cf.generate(read[None, :])[0]
    assert np.allclose(once, blend, atol=1e-4)
    for user in ("bob", "cat"):
        rec.on_click(user, "new", "click", ts=4)
    rec.on_item_cf(["new"], learned[None, :])
    assert np.allclose(rec.index.get("cf", ["new"])["new"], learned)


def test_without_content_the_index_holds_what_cf_learned_and_nothing_for_a_new_item() -> None:
    rec = Recommender(2, 3, content_cf=False)
    rec.on_item("a", "a", np.array([1.0, 0.0], dtype=np.float32), ts=0)
    rec.on_item_cf(["a"], np.array([[0.1, 0.2, 0.3]], dtype=np.float32))
    rec.on_item("b", "b", np.array([0.9, 0.1], dtype=np.float32), ts=0)
    assert set(rec.index.get("cf", ["a", "b"])) == {"a"}


def test_an_item_learned_from_once_teaches_the_map_less_than_one_learned_from_often() -> None:
    model = ContentToCF(text_dim=2, cf_dim=1, l2=1e-6, full_takes=10, refit_every=1)
    model.observe("often", np.array([1.0, 0.0]), np.array([1.0]), takes=10)
    model.observe("once", np.array([1.0, 0.0]), np.array([-1.0]), takes=1)
    assert model.generate(np.array([[1.0, 0.0]]))[0, 0] > 0.6  # (1 - 0.1) / 1.1: weights 1 and 0.1
    model.forget("often")
    assert model.generate(np.array([[1.0, 0.0]]))[0, 0] < -0.9


def test_a_new_item_with_only_a_picture_gets_the_cf_vector_its_picture_predicts() -> None:
    """Titles say nothing (all alike); image vectors carry what CF learns, and the map reads them."""
    rng = np.random.default_rng(1)
    text_dim, image_dim, cf_dim = 6, 10, 4
    truth = rng.normal(size=(image_dim, cf_dim))
    rec = Recommender(text_dim, cf_dim, content_full_takes=3, modalities={"image": image_dim})
    same = _unit(np.ones(text_dim))
    images = _unit(rng.normal(size=(60, image_dim)))
    items = [f"i{n}" for n in range(60)]
    for item, image in zip(items, images, strict=True):
        rec.on_item(item, "vase", same, ts=0)
        rec.on_item_vector(item, "image", image)
        for _ in range(3):
            rec.on_click(f"u{item}", item, "click", ts=1)
    rec.on_item_cf(items, (images @ truth).astype(np.float32))

    picture = _unit(rng.normal(size=image_dim))
    rec.on_item_vector("new", "image", picture)  # no text, no take, no CF vector from CF
    (generated,) = rec.index.get("cf", ["new"]).values()
    expected = picture @ truth
    assert np.dot(generated, expected) / (np.linalg.norm(generated) * np.linalg.norm(expected)) > 0.95
    # Its picture taken back, it has nothing left to be placed by, nor a CF vector to keep.
    rec.on_item_vector("new", "image", None)
    assert not rec.index.has("cf", "new")
