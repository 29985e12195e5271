"""The review reader on reviews labelled by hand, in six domains, that paraphrase every aspect."""

from __future__ import annotations

import pytest

from streamrec.eval.labelled import load_labelled, score_reading
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.opinions import DEFAULT_ASPECTS
from streamrec.model.text.reader import ReviewReader


def test_the_labelled_reviews_paraphrase_and_their_clauses_are_their_words() -> None:
    labelled = load_labelled()
    assert len(labelled) == 90 and len({r["domain"] for r in labelled}) == 6
    phrases = [p.lower() for a in DEFAULT_ASPECTS for p in a.phrases]
    for review in labelled:
        at = 0
        for clause in review["clauses"]:
            at = review["text"].index(clause["text"], at) + len(clause["text"])
            # No clause holds an aspect's phrase word for word: it is read, not matched.
            assert not any(p in clause["text"].lower() for p in phrases), clause
    mixed = [r for r in labelled if any((c["polarity"] > 0) != (r["rating"] >= 4) and c["polarity"]
                                         and r["rating"] != 3 for c in r["clauses"])]  # fmt: skip
    assert len(mixed) >= 40


@pytest.fixture(scope="module")
def reader() -> ReviewReader:
    return ReviewReader(TransformerEncoder(device="cpu", dtype="float32", max_length=128))


def test_the_zero_shot_reader_names_aspects_it_does_not_see_word_for_word(reader: ReviewReader) -> None:
    score = score_reading(reader)
    # The zero-shot reader's bar on paraphrases (measured 0.35 agreement, 0.78 precision): what it
    # names, it names rightly three times in four; every domain is read, none by luck alone.
    assert score["aspect_agreement"] >= 0.3, score
    assert score["aspect_precision"] >= 0.7, score
    assert min(score["aspect_agreement_by_domain"].values()) >= 0.2, score
    # Praise reads above criticism before any rating is learned.
    assert score["clause_auc"] > 0.6, score
