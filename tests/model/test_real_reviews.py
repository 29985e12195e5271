"""What text does for real users: real reviews and catalog texts (the packaged Amazon sample) read by
the real MiniLM. A user who pans an item is shown fewer items like it than a user who said nothing,
and a user who loved it more; an item known only by its description reaches the lists of the users
whose latest items are like it."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.eval.sample import load_sample
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.encoder import TransformerEncoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop() -> tuple[Recommender, TransformerEncoder, list[dict[str, object]]]:
    rows = load_sample()
    reviewed = {r["item_id"] for r in rows if r["type"] == "review"}
    # The catalog-only items are held back: they are published after the reviews, one by one.
    items = [r for r in rows if r["type"] == "item" and r["item_id"] in reviewed]
    reviews = sorted((r for r in rows if r["type"] == "review"), key=lambda r: r["ts"])
    encoder = TransformerEncoder(device="cpu", dtype="float32")
    vectors = encoder.encode([f"{r['title']}. {r['description']}" for r in items])
    rec = Recommender(text_dim=encoder.dim, cf_dim=3, item_model=False)
    for row, vector in zip(items, vectors, strict=True):
        rec.on_item(str(row["item_id"]), str(row["title"]), vector, ts=0.0)
    # The shop's other users: every review of the sample, read, in time order.
    said = encoder.encode([str(r["text"]) for r in reviews])
    for row, vector in zip(reviews, said, strict=True):
        item, user, rating = str(row["item_id"]), str(row["user_id"]), float(row["rating"])  # type: ignore[arg-type]
        rec.on_item_review(item, vector, rating)
        rec.on_review(user, item, rating, float(row["ts"]), vector)  # type: ignore[arg-type]
    rec.catalog_only = [r for r in rows if r["type"] == "item" and r["item_id"] not in reviewed]  # type: ignore[attr-defined]
    return rec, encoder, reviews


def _like(rec: Recommender, item: str, n: int = 10) -> set[str]:
    """The `n` items whose text is nearest `item`'s (itself left out)."""
    vector = rec.item_text(item)
    assert vector is not None
    return {i for i, _ in rec.index.search("text", vector, n + 1) if i != item}


def _latest(rec: Recommender, user: str) -> str | None:
    latest = rec.profiles[user].recent_items(1)
    return latest[0][0] if latest else None


def _shown_like(rec: Recommender, user: str, like: set[str]) -> int:
    return sum(s.item_id in like for s in rec.recommend([user], k=10)[0])


def test_a_pan_shows_fewer_items_like_it_and_a_rave_more(shop) -> None:  # type: ignore[no-untyped-def]
    rec, encoder, reviews = shop
    now = max(float(r["ts"]) for r in reviews) + 60.0  # type: ignore[arg-type]
    shown = {"quiet": 0, "critic": 0, "fan": 0}
    cases = 0
    for n, row in enumerate(r for r in reviews if float(r["rating"]) <= 2):  # type: ignore[arg-type]
        item = str(row["item_id"])
        like = _like(rec, item)
        baseline = _shown_like(rec, "quiet", like)
        if baseline == 0:
            continue  # a user who said nothing is shown none of its kind: nothing to show fewer of
        cases += 1
        critic, fan = f"critic-{n}", f"fan-{n}"
        rec.on_review(critic, item, float(row["rating"]), now, encoder.encode([str(row["text"])])[0])  # type: ignore[arg-type]
        by_critic = _shown_like(rec, critic, like)
        rec.on_review(fan, item, 5.0, now, rec.item_text(item))
        by_fan = _shown_like(rec, fan, like)
        assert by_critic <= baseline <= by_fan, (item, by_critic, baseline, by_fan)
        shown["quiet"] += baseline
        shown["critic"] += by_critic
        shown["fan"] += by_fan
    assert cases >= 3, "the sample holds panned items whose kind a new user is shown"
    assert shown["critic"] < shown["quiet"] < shown["fan"], shown


def test_an_item_known_only_by_its_description_reaches_the_users_of_its_kind(shop) -> None:  # type: ignore[no-untyped-def]
    rec, encoder, reviews = shop
    users = sorted({str(r["user_id"]) for r in reviews})
    now = max(float(r["ts"]) for r in reviews) + 60.0  # type: ignore[arg-type]
    reached = {"its kind": [], "the others": []}
    for row in rec.catalog_only:
        item = str(row["item_id"])
        vector = encoder.encode([f"{row['title']}. {row['description']}"])[0]
        rec.on_item(item, str(row["title"]), vector, ts=now)
        like = _like(rec, item, n=5)
        lists = rec.recommend(users, k=10)
        for user, scored in zip(users, lists, strict=True):
            kind = "its kind" if _latest(rec, user) in like else "the others"
            reached[kind].append(item in {s.item_id for s in scored})
        rec.withdraw(item)  # one new item at a time
    share = {kind: float(np.mean(hits)) for kind, hits in reached.items()}
    assert len(reached["its kind"]) >= 20, reached
    # Nobody took it, so only its text can put it there: on the lists of its kind far more often.
    assert share["its kind"] >= 0.1 and share["its kind"] >= 5 * share["the others"], share
    # A shop that keeps room for new items shows it to more of its kind.
    rec.ranker.new_items = 0.1
    try:
        roomy = []
        for row in rec.catalog_only:
            item = str(row["item_id"])
            rec.restore(item)
            like = _like(rec, item, n=5)
            kind = [u for u in users if _latest(rec, u) in like]
            lists = rec.recommend(kind, k=10) if kind else []
            roomy += [item in {s.item_id for s in scored} for scored in lists]
            rec.withdraw(item)
    finally:
        rec.ranker.new_items = 0.0
    assert float(np.mean(roomy)) > share["its kind"]
