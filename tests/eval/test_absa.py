"""Reviews people labelled or rated per aspect: their loaders, and the reader measured on them."""

from __future__ import annotations

import gzip
import io
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from streamrec.eval.absa import score_semeval
from streamrec.eval.absa_data import load_semeval, load_tripadvisor
from streamrec.model.errors import StreamrecError
from tests.datasets import require

SEMEVAL = Path("semeval14-absa/Restaurants_Train_v2.xml.gz")

_XML = """<?xml version="1.0" encoding="UTF-8"?>
<sentences>
  <sentence id="1"><text>But the staff was so horrible to us.</text>
    <aspectTerms><aspectTerm term="staff" polarity="negative" from="8" to="13"/></aspectTerms>
    <aspectCategories><aspectCategory category="service" polarity="negative"/></aspectCategories>
  </sentence>
  <sentence id="2"><text>Great pizza, fair prices.</text>
    <aspectCategories><aspectCategory category="food" polarity="positive"/>
      <aspectCategory category="price" polarity="positive"/></aspectCategories>
  </sentence>
</sentences>
"""

_HOTEL = """<Hotel Name>Hotel X
<Overall Rating>4.0

<Review ID>UR1
<Author>ann
<Title>“Lovely stay”
<Content>The room was spotless. The staff was rude.
<Date>March 27, 2012
<Overall>4.0
<Cleanliness>5
<Service>2
<Location>-1

<Review ID>UR2
<Author>bob
<Content>Noisy at night.
<Overall>2.0
<Sleep Quality>1
"""


def test_semeval_sentences_keep_categories_terms_and_polarity(tmp_path: Path) -> None:
    path = tmp_path / "r.xml.gz"
    path.write_bytes(gzip.compress(_XML.encode()))
    first, second = load_semeval(path)
    assert first.categories == {"service": "negative"}
    assert first.terms == (("staff", 8, 13, "negative"),) and first.text[8:13] == "staff"
    assert second.categories == {"food": "positive", "price": "positive"} and second.terms == ()
    (tmp_path / "bad.xml").write_text("<nothing/>")
    with pytest.raises(StreamrecError, match="no <sentence>"):
        load_semeval(tmp_path / "bad.xml")


def test_tripadvisor_reviews_once_each_with_their_rated_aspects(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("hotel_1.dat", "hotel_2.dat"):  # a re-crawl: the same reviews twice
            data = _HOTEL.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "hotels.tar.gz"
    path.write_bytes(buffer.getvalue())
    reviews = load_tripadvisor(path)
    assert [r.id for r in reviews] == ["UR1", "UR2"]
    assert reviews[0].title == "Lovely stay" and reviews[0].overall == 4.0
    # Not rated (-1) is not a rating.
    assert reviews[0].aspects == {"cleanliness": 5.0, "service": 2.0}
    assert reviews[1].aspects == {"sleep_quality": 1.0}


@pytest.fixture(scope="module")
def restaurant_reader():  # type: ignore[no-untyped-def]
    from streamrec.model.text.encoder import TransformerEncoder
    from streamrec.model.text.opinions import load_aspects
    from streamrec.model.text.reader import ReviewReader

    aspects = load_aspects(Path(str(resources.files("streamrec") / "data" / "aspects" / "restaurants.json")))
    return ReviewReader(TransformerEncoder(device="cpu", dtype="float32", max_length=128), aspects)


@pytest.mark.slow
def test_on_people_labels_the_reader_beats_the_trivial_readings(restaurant_reader) -> None:  # type: ignore[no-untyped-def]
    sentences = load_semeval(require(SEMEVAL))[:800]
    score = score_semeval(restaurant_reader, sentences)
    pol = score["polarity"]
    majority = pol["majority"]["accuracy"]
    # Reading the aspect's own clauses, and learning from the labels, beat always the most common
    # polarity; the head that also reads the aspect's clause beats the one that reads the sentence.
    assert pol["reader_reader"]["accuracy"] > majority + 0.03, pol
    assert pol["learned_aspect"]["accuracy"] > majority + 0.08, pol
    assert pol["learned_aspect"]["macro_f1"] > pol["learned_sentence"]["macro_f1"] - 0.02, pol
    # Detection beats naming every sentence's most common category.
    counts = np.array([[c in s.categories for c in score["categories"]] for s in sentences]).sum(axis=0)
    trivial_f1 = 2 * counts.max() / (counts.sum() + len(sentences))
    assert score["detection"]["zero_shot"]["f1"] > trivial_f1, (score["detection"], trivial_f1)
    # What is stated as praise or criticism at the claims' confidence agrees with people more than
    # every reading does.
    claims = score["claims"]["reader_reader"]
    assert claims["agree_stated"] is None or claims["agree_stated"]["value"] >= claims["agree_all"], claims
