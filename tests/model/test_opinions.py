"""Reading reviews as opinions with the real MiniLM: clauses, aspects, sentiment, dislikes, reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.model.errors import StreamrecError
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.opinions import load_aspects, readable, segments, stance
from streamrec.model.text.reader import ReviewReader
from streamrec.model.text.sentiment import SentimentHead
from streamrec.model.users.portrait import portrait


@pytest.fixture(scope="module")
def encoder() -> TransformerEncoder:
    return TransformerEncoder(device="cpu", dtype="float32", max_length=128)


@pytest.fixture(scope="module")
def reader(encoder: TransformerEncoder) -> ReviewReader:
    return ReviewReader(encoder)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_every_clause_is_a_slice_of_the_text_in_order(text: str) -> None:
    spans = segments(text)
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))


def test_a_review_splits_into_opinions_whose_words_are_its_own(reader: ReviewReader) -> None:
    text = "Great price for the quality. Works, but the strap snapped after a week! Shipping was fast."
    (reading,) = reader.read([text])
    found = [(o.aspect, o.text) for o in reading.opinions]
    said = [("value", "Great price for the quality"), ("quality", "the strap snapped after a week"),
            ("service", "Shipping was fast")]  # fmt: skip
    # Each opinion is one a person reads there, in order; a clause it cannot place it leaves out.
    assert found == [pair for pair in said if pair in found] and len(found) >= 2, found
    assert all(text[o.start : o.end] == o.text for o in reading.opinions)
    assert reader.n_sequences == reader.n_reviews  # one encoder sequence per review


def test_evidence_is_the_text_a_person_reads_not_its_html(reader: ReviewReader) -> None:
    raw = "The tone is fairly &#34;bright&#34; &amp; clear. Shipping took a month."
    (reading,) = reader.read([raw])
    assert reading.text == readable(raw) == 'The tone is fairly "bright" & clear. Shipping took a month.'
    assert all("&#" not in o.text and reading.text[o.start : o.end] == o.text for o in reading.opinions)
    assert ("service", "Shipping took a month") in [(o.aspect, o.text) for o in reading.opinions]


def test_a_long_review_is_read_to_its_end(encoder: TransformerEncoder) -> None:
    """No clause cap and no token cap: a complaint after 40 clauses, past the first window, is read."""
    filler = ". ".join(f"Song number {n} sounded fine through it" for n in range(40))
    text = f"{filler}. The delivery was late by three weeks."
    reader = ReviewReader(TransformerEncoder(device="cpu", dtype="float32", max_length=64))
    (passage,) = reader.encode([text])
    assert len(passage.spans) == 41 and len(passage.clauses) == 41
    (reading,) = reader.read([text])
    assert ("service", "The delivery was late by three weeks") in [
        (o.aspect, o.text) for o in reading.opinions
    ]


def test_pooled_clause_vectors_mean_what_the_clause_says(encoder: TransformerEncoder) -> None:
    text = "Lovely warm tone. The case arrived crushed and the courier never answered."
    cut = segments(text)
    _, pooled = encoder.read([text], [cut])
    apart = encoder.encode([text[a:b] for a, b in cut])
    # Each clause's pooled vector is nearer its own words than the other clause's.
    sims = pooled @ apart.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0], sims


def test_chinese_phrases_of_an_aspect_are_matched_word_for_word(reader: ReviewReader) -> None:
    (reading,) = reader.read(["性价比高，音质很好。质量差，用了一周就坏了"])
    assert [(o.aspect, o.text) for o in reading.opinions] == [("value", "性价比高"), ("quality", "质量差"),
                                                              ("quality", "用了一周就坏了")]  # fmt: skip


def test_a_deployment_names_its_own_aspects_and_a_bad_file_says_what_is_wrong(tmp_path, encoder) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "aspects.json"
    path.write_text(
        '[{"name": "sound", "phrases": ["warm tone", "tinny sound", "音质很好"], "labels": {"zh": "音质"}}]'
    )
    (aspect,) = load_aspects(path)
    assert aspect.label("zh") == "音质" and aspect.label("en") == "sound"
    (reading,) = ReviewReader(encoder, [aspect]).read(["The tone is warm and rich. It came in a box."])
    assert [o.aspect for o in reading.opinions] == ["sound"]
    path.write_text('[{"name": "sound"}]')
    with pytest.raises(StreamrecError, match="phrases"):
        load_aspects(path)


def test_the_sentiment_prior_reads_plain_reviews_before_any_rating(encoder: TransformerEncoder) -> None:
    head = SentimentHead.from_anchors(encoder)
    good = ["I love these strings, they sound amazing.", "Works great, very happy with it."]
    bad = ["Total junk, it stopped working.", "Awful, returned it the next day."]
    polarity = head.polarity(encoder.encode(good + bad))
    assert (polarity[:2] > 0).all() and (polarity[2:] < 0).all(), polarity


#: Rated reviews written for these tests.
RATED = [
    ("A real bargain, cheap and it sounds great", 5), ("Worth every cent I paid", 5),
    ("Cheap price and excellent tone, love it", 5), ("For this little money it is a steal", 4),
    ("Way too much money for what it is", 1), ("A rip-off, the price is a joke", 1),
    ("Broke on day two, awful", 1), ("Sounds thin and the knobs came off", 2),
]  # fmt: skip


def _catalog(rec: Recommender, encoder: TransformerEncoder, items: dict[str, str]) -> None:
    for item, title in items.items():
        rec.on_item(item, title, encoder.encode([title])[0], ts=0.0)


def test_with_the_dislike_push_a_one_star_review_pushes_away_from_what_it_resembles(
    encoder: TransformerEncoder,
) -> None:
    items = {f"h{n}": f"Wireless bluetooth headphones, model {n}" for n in range(6)}
    items |= {"g1": "Acoustic guitar strings", "d1": "Drum sticks, hickory", "k1": "Keyboard stand",
              "m1": "Vocal microphone", "c1": "Guitar capo", "s1": "Snare drum head"}  # fmt: skip
    lists = {}
    for who, rating in (("panned", 1.0), ("pleased", 5.0)):
        rec = Recommender(encoder.dim, 3, opinions=["dislikes", "aspects"])
        _catalog(rec, encoder, items)
        text = "Cheap plastic, broke after a week." if rating == 1 else "Lovely sound, comfortable."
        (reading,) = ReviewReader(encoder).read([text])
        rec.on_review(
            who, "h0", rating, 1.0, reading.vector, polarity=reading.polarity, opinions=reading.opinions
        )
        lists[who] = [s.item_id for s in rec.recommend([who], k=5)[0]]
    count = {who: sum(i.startswith("h") for i in items_) for who, items_ in lists.items()}
    assert count["panned"] < count["pleased"], lists
    assert count["panned"] <= 1


def test_reasons_cite_the_users_words_and_the_reviewers_and_a_profile_reads_them(
    encoder: TransformerEncoder, reader: ReviewReader
) -> None:
    rec = Recommender(encoder.dim, 3, labels={"value": "value for money"})
    reader = ReviewReader(encoder)
    for text, rating in RATED:  # a shop's first rated reviews teach its sentiment model
        (passage,) = reader.encode([text])
        reader.learn(passage, rating)
    reader.commit()
    _catalog(
        rec, encoder, {"a": "Studio headphones", "b": "Studio headphones, closed back", "c": "Drum sticks"}
    )
    # Three reviewers praise b's price, one of them twice in one review: three reviewers, not four.
    theirs = ["Great price for the quality, worth every penny", "Great price, worth every penny",
              "Great price for the quality. Worth every penny too"]  # fmt: skip
    for n, text in enumerate(theirs):
        (reading,) = reader.read([text])
        assert [o.aspect for o in reading.opinions].count("value") == (2 if n == 2 else 1)
        rec.on_item_review("b", reading.vector, 5.0, f"r{n}".encode(), reading.opinions, author=f"u{n}")
    n, praising = rec.reputation.counts("b", "value")
    assert n == 3  # three reviewers, not four
    mine = "Good value for money, cheap and it works"
    (reading,) = reader.read([mine])
    rec.on_item_review("a", reading.vector, 5.0, b"mine", reading.opinions, author="ann")
    rec.on_review("ann", "a", 5.0, 1.0, reading.vector, polarity=reading.polarity, opinions=reading.opinions)
    scored = rec.recommend(["ann"], k=2)[0]
    assert all(len(s.reasons) <= 2 for s in scored)
    by_id = {s.item_id: s for s in scored}
    reason = by_id["b"].reasons[0]
    assert "value for money" in reason and "“" in reason, reason
    quotes = [part.split("”")[0] for part in reason.split("“")[1:]]
    assert quotes[0] in mine
    # A polarity is stated only as sure as the reader is (stance); else what was written about.
    if praising:
        assert f"{praising} reviewers praise" in reason or "a reviewer praises" in reason, reason
        assert any(quotes[1] in text for text in theirs)
    else:
        assert "3 reviewers write about" in reason and "praise" not in reason, reason
    if stance(reading.opinions[0].polarity) == 0:
        assert reason.startswith("you wrote about"), reason

    view = portrait(
        rec.profiles["ann"], lambda i: {"a": "Studio headphones"}.get(i), {"value": "value for money"}
    )
    assert view.cares_about[0].aspect == "value"
    assert view.cares_about[0].praised == (stance(reading.opinions[0].polarity) > 0)
    assert all(e.text in mine for e in view.cares_about[0].evidence)
    assert [i.item_id for i in view.liked] == ["a"] and not view.disliked


def test_a_reading_not_sure_of_its_polarity_is_not_quoted_backwards(
    encoder: TransformerEncoder, reader: ReviewReader
) -> None:
    # Praise the reader reads as faintly negative: it must not become "you found it poor on value".
    mine = "The price is a great selling point, just by itself"
    (reading,) = reader.read([mine])
    (opinion,) = [o for o in reading.opinions if o.aspect == "value"]
    assert stance(opinion.polarity) >= 0, opinion
    rec = Recommender(encoder.dim, 3, labels={"value": "value for money"})
    _catalog(rec, encoder, {"a": "Office chair", "b": "Office chair, mesh back", "c": "Desk lamp"})
    for n, text in enumerate(["Great price, worth every penny", "Cheap and worth the money"]):
        (theirs,) = reader.read([text])
        rec.on_item_review("b", theirs.vector, 5.0, f"r{n}".encode(), theirs.opinions, author=f"u{n}")
    rec.on_item_review("a", reading.vector, 5.0, b"mine", reading.opinions, author="ann")
    rec.on_review("ann", "a", 5.0, 1.0, reading.vector, polarity=reading.polarity, opinions=reading.opinions)
    reasons = [r for s in rec.recommend(["ann"], k=2)[0] for r in s.reasons]
    quoting = [r for r in reasons if "selling point" in r]
    assert quoting and not any("poor" in r for r in quoting), reasons
    view = portrait(rec.profiles["ann"], lambda i: None, {"value": "value for money"})
    assert view.cares_about[0].criticized == 0


def test_reasons_are_worded_in_the_deployments_language(encoder: TransformerEncoder) -> None:
    rec = Recommender(encoder.dim, 3, language="zh")
    _catalog(rec, encoder, {"e1": "无线蓝牙耳机", "p1": "不粘锅", "s1": "洗发水"})
    rec.popularity.learn_one("p1", 1.0, 5.0)
    rec.on_click("u", "e1", "purchase", 2.0)
    reasons = [r for s in rec.recommend(["u"], k=2)[0] for r in s.reasons]
    assert reasons and all(not any("a" <= ch <= "z" for ch in r.replace("e1", "")) for r in reasons), reasons


def test_a_dislike_or_skip_is_a_negative_everywhere() -> None:
    rec = Recommender(2, 3)
    rec.on_item("x", "X", np.array([1, 0], dtype=np.float32), ts=0)
    rec.on_item("y", "Y", np.array([0.9, 0.1], dtype=np.float32), ts=0)
    rec.on_click("u", "x", "dislike", 1.0)
    assert rec.popularity.count("x") == 0.0
    profile = rec.profiles["u"]
    assert profile.text_vector() is None and profile.dislike_vector() is not None and "x" in profile.seen


@pytest.mark.parametrize("parts", [("dislikes",), ("aspects",), ()])
def test_each_opinion_part_changes_only_what_it_names(parts: tuple[str, ...]) -> None:
    from streamrec.model.text.opinions import Opinion

    rec = Recommender(text_dim=2, cf_dim=3, opinions=parts)
    rec.on_item("a", "Amp", np.array([1.0, 0.0], dtype=np.float32), ts=0)
    said = Opinion("quality", -0.8, 0, 5, "Broke")
    vector = np.array([0.6, 0.8], dtype=np.float32)
    rec.on_item_review("a", vector, 1.0, b"k", (said,), "ann")
    profile = rec.on_review("ann", "a", 1.0, 1.0, vector, polarity=-0.9, opinions=(said,))
    # Never a like, whatever parts are on: no count, no pull on the profile.
    assert rec.popularity.count("a") == 0
    assert profile.text_vector() is None and profile.history[-1][2] == "dislike"
    assert (profile.dislike_vector() is not None) == ("dislikes" in parts)
    assert bool(rec.reputation.aspects_of("a")) == ("aspects" in parts)
