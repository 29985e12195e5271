"""How well a review reader reads what people wrote, on reviews labelled by hand.

``streamrec/data/labelled_reviews.jsonl`` holds 90 reviews written and labelled for this
measurement, 15 in each of six domains (instruments, electronics, kitchen, hotels,
restaurants, clothing), 57 of them mixed (a 4-5 star review that pans one thing, a 1-2 star
review that praises one): every clause with the aspect a person reads in it (or none) and its
polarity. The clauses paraphrase; none holds an aspect's phrase word for word.

`score_reading` reads them with a `ReviewReader` as it stands (it learns nothing from them)
and matches each labelled clause to the reader's clause that overlaps it most:

* ``aspect_agreement``: share of labelled clauses whose aspect (or none) the reader names;
  ``aspect_precision``: of the clauses it names an aspect for, the share named right;
* ``clause_auc``: AUC of the clauses' polarities, praising against criticizing ones;
* ``aspect_macro_f1``: the F1 of each aspect (and of none), averaged: naming the most common
  aspect everywhere scores well on agreement when one aspect dominates, not on this;
* ``most_common_agreement``, ``most_common_macro_f1`` and ``always_praise_accuracy``: what naming
  every clause's aspect as the most common one, and reading every clause as praise, score: the
  bars a reader clears (the most common aspect's agreement is also its precision);
* ``contrast_accuracy``: of the clauses whose polarity is opposite to their review's rating
  (the panned tuners of a 5-star review), the share read on their own side: how far an
  opinion's polarity is the clause's and not the review's mood again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from streamrec.model.metrics.accumulators import AUC
from streamrec.model.text.reader import ReviewReader

__all__ = ["load_labelled", "score_reading"]


def load_labelled() -> list[dict[str, Any]]:
    """The labelled reviews shipped with streamrec."""
    text = (resources.files("streamrec") / "data" / "labelled_reviews.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def score_reading(reader: ReviewReader, labelled: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Aspect agreement and precision, clause polarity AUC and contrast accuracy (module docstring)."""
    labelled = list(labelled) if labelled is not None else load_labelled()
    passages = reader.encode([r["text"] for r in labelled])
    n = agree = named = named_right = signed = signed_right = contrasting = contrast_right = 0
    praise: list[float] = []
    blame: list[float] = []
    per_domain: dict[str, list[int]] = {}
    pairs: list[tuple[str | None, str | None]] = []
    for review, passage in zip(labelled, passages, strict=True):
        _, values = reader.polarities(passage, review["rating"])
        mood = 1 if review["rating"] >= 4 else -1 if review["rating"] <= 2 else 0
        at = 0
        for clause in review["clauses"]:
            start = passage.text.index(clause["text"], at)
            end = at = start + len(clause["text"])
            overlap = [min(end, b) - max(start, a) for a, b in passage.spans]
            k = int(np.argmax(overlap)) if overlap and max(overlap) > 0 else None
            said = reader.detector.name(passage.aspects[k]) if k is not None else None
            n += 1
            pairs.append((clause["aspect"], said))
            agree += said == clause["aspect"]
            named += said is not None
            named_right += said is not None and said == clause["aspect"]
            domain = per_domain.setdefault(review["domain"], [0, 0])
            domain[0] += said == clause["aspect"]
            domain[1] += 1
            if clause["polarity"] == 0 or k is None:
                continue
            value = float(values[k])
            (praise if clause["polarity"] > 0 else blame).append(value)
            right = (value > 0) == (clause["polarity"] > 0)
            signed += 1
            signed_right += right
            if mood and mood != clause["polarity"]:
                contrasting += 1
                contrast_right += right
    # The trivial readings a reader must beat: every clause the most common aspect (or none), and
    # every clause praise.
    answers = [c["aspect"] for r in labelled for c in r["clauses"]]
    most_common = max(set(answers), key=answers.count)
    auc = AUC()
    for value in praise:
        auc.observe(value, np.array(blame))
    return {
        "reviews": len(labelled),
        "clauses": n,
        "aspect_agreement": round(agree / max(n, 1), 4),
        "aspect_precision": round(named_right / max(named, 1), 4),
        "aspect_agreement_by_domain": {d: round(a / t, 4) for d, (a, t) in sorted(per_domain.items())},
        "clause_auc": None if auc.value is None else round(auc.value, 4),
        "clause_sign_accuracy": round(signed_right / max(signed, 1), 4),
        "most_common_aspect": most_common,
        "most_common_agreement": round(answers.count(most_common) / max(n, 1), 4),
        "aspect_macro_f1": round(_macro_f1(pairs), 4),
        "most_common_macro_f1": round(_macro_f1([(truth, most_common) for truth, _ in pairs]), 4),
        "always_praise_accuracy": round(len(praise) / max(len(praise) + len(blame), 1), 4),
        "contrast_accuracy": round(contrast_right / max(contrasting, 1), 4),
        "contrasting_clauses": contrasting,
    }


def _macro_f1(pairs: Sequence[tuple[str | None, str | None]]) -> float:
    """The F1 of naming each class (an aspect, or none) that the labels hold, averaged over them."""
    classes = {truth for truth, _ in pairs}
    scores = []
    for c in classes:
        both = sum(truth == c and said == c for truth, said in pairs)
        labelled = sum(truth == c for truth, _ in pairs)
        named = sum(said == c for _, said in pairs)
        scores.append(2 * both / (labelled + named) if labelled + named else 0.0)
    return sum(scores) / max(len(scores), 1)
