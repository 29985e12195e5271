"""Training pairs come from the training share of the stream only, and never take a pan as a positive."""

from __future__ import annotations

from pathlib import Path

from streamrec.eval.datasets import load_dataset, parse_columns
from streamrec.learn.pairs import build_pairs, split_at
from streamrec.model.text.opinions import readable
from tests.learn.conftest import COLUMNS


def test_no_text_after_the_split_and_no_panned_review_is_trained_on(sample_csv: Path) -> None:
    data = load_dataset(sample_csv, format="csv", columns=parse_columns(COLUMNS))
    split = split_at(data.interactions, 0.5)
    pairs = build_pairs(data, train_share=0.5, seed=1)
    assert len(pairs) > 50 and set(pairs.counts()) == {"next", "review"}
    before = {readable(e.text) for e in data.interactions[:split] if e.text}
    after = {readable(e.text) for e in data.interactions[split:] if e.text} - before
    catalog = set(data.item_texts.values())
    texts = set(pairs.anchors) | set(pairs.positives)
    assert texts <= before | catalog
    assert not texts & after
    liked = {readable(e.text) for e in data.interactions[:split] if e.text and (e.rating or 5) > 2}
    panned = {readable(e.text) for e in data.interactions[:split] if e.text and (e.rating or 5) <= 2}
    assert panned, "the sample has panned reviews"
    assert not set(pairs.positives) & (panned - liked)
    assert not set(pairs.anchors) & (panned - liked)


def test_the_pairs_drawn_are_the_same_for_a_seed(sample_csv: Path) -> None:
    data = load_dataset(sample_csv, format="csv", columns=parse_columns(COLUMNS))
    a = build_pairs(data, seed=3).sample(40, seed=3)
    b = build_pairs(data, seed=3).sample(40, seed=3)
    assert a.anchors == b.anchors and a.positives == b.positives and len(a) == 40
