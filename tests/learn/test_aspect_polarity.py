"""The encoder fine-tuned on labelled (aspect, clause) pairs reads polarity in domains it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.eval.labelled import load_labelled
from streamrec.learn.aspect_polarity import PairClassifier, PairConfig
from streamrec.model.text.weights import locate_model

pytestmark = pytest.mark.slow

#: Taught on these domains of the packaged labelled reviews, read on the others.
TAUGHT = {"instruments", "electronics", "kitchen", "clothing"}


def _pairs(domains: set[str], inside: bool) -> tuple[list[str], list[str], np.ndarray]:
    aspects, texts, labels = [], [], []
    for review in load_labelled():
        if (review["domain"] in domains) != inside:
            continue
        for clause in review["clauses"]:
            if clause["aspect"] is not None:
                aspects.append(clause["aspect"])
                texts.append(clause["text"])
                labels.append(clause["polarity"] + 1)  # -1, 0, 1 -> negative, neutral, positive
    return aspects, texts, np.array(labels)


def test_fine_tuned_pairs_read_unseen_domains_above_the_untaught_copy_and_the_majority() -> None:
    train = _pairs(TAUGHT, inside=True)
    test_aspects, test_texts, truth = _pairs(TAUGHT, inside=False)
    model_dir, _ = locate_model(None)
    config = PairConfig(epochs=5, batch_size=16, learning_rate=1e-4, max_seq_length=64, device="cpu")

    untaught = PairClassifier(model_dir, config)
    before = (untaught.predict_proba(test_aspects, test_texts).argmax(axis=1) == truth).mean()

    taught = PairClassifier(model_dir, config)
    losses = taught.fit(*train)
    proba = taught.predict_proba(test_aspects, test_texts)
    after = (proba.argmax(axis=1) == truth).mean()
    majority = np.bincount(train[2], minlength=3).argmax()
    print(
        f"\n{len(train[2])} pairs taught, {len(truth)} read (hotels, restaurants): accuracy {after:.3f}, "
        f"untaught {before:.3f}, majority {(truth == majority).mean():.3f}; losses {np.round(losses, 3)}"
    )
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert losses[-1] < losses[0]
    assert after >= (truth == majority).mean() + 0.1
    assert after >= before + 0.1


def test_pairs_must_be_labelled_as_three_classes() -> None:
    clf = PairClassifier(locate_model(None)[0], PairConfig(device="cpu"))
    with pytest.raises(ValueError, match="'labels' must be 0, 1 or 2"):
        clf.fit(["value"], ["Cheap and good."], [3])
    with pytest.raises(ValueError, match="equally long"):
        clf.fit(["value", "quality"], ["Cheap and good."], [2])
