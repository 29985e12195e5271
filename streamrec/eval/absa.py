"""How the review reader reads aspects, against what people labelled (SemEval) and rated (TripAdvisor).

Every reading is the workers' own: `ReviewReader.encode` (one encoder pass, clauses pooled,
aspects detected) and `ReviewReader.polarities`. Beside it, what a small head learns from the
labels or ratings by cross-validation (folds of sentences or of reviews, never split): what a
shop that has such labels could read, and what the one-pass reading leaves to learn.

SemEval-2014 restaurants (`score_semeval`):

- **detection**: aspect categories per sentence, micro precision/recall/F1 over the five
  categories (a sentence the reader names no aspect in is "anecdotes/miscellaneous"); zero-shot
  (the aspects' phrases) and learned (one logistic regression per category on the sentence's
  vector and its closeness to each aspect's phrases);
- **polarity** of each labelled (sentence, category), three classes (conflict left out), with
  the categories given, as in the task's subtask 4: accuracy and macro-F1 of the majority class,
  of the sentence's mood (the head's reading of the whole sentence, banded into three classes by
  two thresholds learned on the training folds), of the reader (its clauses on that aspect,
  banded the same way), and of heads learned on the sentence alone and on the sentence with its
  aspect's clause (aspect-conditioned), and, given one, a model trained on the (category,
  sentence) pairs themselves (the encoder fine-tuned, `learn.aspect_polarity`);
- **claims**: of the positive or negative readings a reason or profile would state, the share
  people agree with, by how sure the reading is; `CLAIM_CONFIDENCE` is the least sureness at
  which at least 9 in 10 are right.

TripAdvisor hotels (`score_tripadvisor`), per aspect: coverage (the share of reviews rating it
in which the reader finds a clause on it), Spearman of the reader's aspect polarity with the
reviewer's aspect rating and with the aspect rating minus the overall; the same for the whole
review's polarity (the baseline), and for a head learned on the review's vector and its aspect
clauses from the aspect ratings (ridge regression, cross-validated).

Intervals: 95%, percentile bootstrap over sentences or reviews (200 resamples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, KFold

from streamrec.eval.absa_data import POLARITIES, LabelledSentence, RatedReview
from streamrec.model.base import FloatArray
from streamrec.model.text.reader import Passage, ReviewReader
from streamrec.model.text.sentiment import SentimentHead

__all__ = ["MISC", "PairModel", "read_passages", "score_semeval", "score_tripadvisor"]

#: SemEval's category for a sentence that names no aspect.
MISC = "anecdotes/miscellaneous"
FOLDS = 5
ROUNDS = 200
#: Reviews encoded per call.
CHUNK = 64

Progress = Callable[[int, int], None] | None
#: Trained on (aspects, texts, labels), returns class probabilities of (test aspects, test texts).
PairModel = Callable[[list[str], list[str], np.ndarray, list[str], list[str]], np.ndarray]


def read_passages(reader: ReviewReader, texts: Sequence[str], progress: Progress = None) -> list[Passage]:
    out: list[Passage] = []
    for start in range(0, len(texts), CHUNK):
        out.extend(reader.encode(texts[start : start + CHUNK]))
        if progress is not None:
            progress(len(out), len(texts))
    return out


def _interval(
    values: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float], seed: int = 0
) -> list[float]:
    """95% percentile-bootstrap interval of `stat` over the rows of `values`."""
    rows = np.asarray(values)
    rng = np.random.default_rng(seed)
    draws = [stat(rows[rng.integers(0, len(rows), len(rows))]) for _ in range(ROUNDS)]
    lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def _mean_ci(hits: np.ndarray) -> dict[str, Any]:
    return {"value": round(float(hits.mean()), 4), "ci": _interval(hits, lambda r: float(r.mean()))}


def _aspect_vector(reader: ReviewReader, passage: Passage, aspect: int) -> tuple[FloatArray, float, bool]:
    """The clauses a passage speaks of `aspect` in: their mean vector and polarity, and whether any.

    Where the reader names no clause for it, the clause closest to the aspect's phrases; for
    an aspect the reader does not know (-1, SemEval's miscellaneous), the whole passage.
    """
    _, values = reader.polarities(passage)
    on = [k for k, a in enumerate(passage.aspects) if a == aspect] if aspect >= 0 else []
    found = bool(on)
    if not on:
        if aspect < 0 or not len(passage.clauses):
            return passage.vector, float(reader.sentiment.polarity(passage.vector)[0]), False
        on = [int(np.argmax(reader.detector.closeness(passage.clauses)[:, aspect]))]
    return passage.clauses[on].mean(axis=0), float(values[on].mean()), found


def _band(train: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The two thresholds that cut a polarity into negative / neutral / positive best on `train`."""
    grid = np.quantile(train, np.linspace(0.02, 0.98, 49))
    best, cut = -1.0, (0.0, 0.0)
    for i, lo in enumerate(grid):
        for hi in grid[i:]:
            guess = np.where(train < lo, 0, np.where(train > hi, 2, 1))
            score = float((guess == labels).mean())
            if score > best:
                best, cut = score, (float(lo), float(hi))
    return cut


def _classes(values: np.ndarray, cut: tuple[float, float]) -> np.ndarray:
    return np.where(values < cut[0], 0, np.where(values > cut[1], 2, 1))


def _cv_predict(
    make: Callable[[], Any], x: np.ndarray, y: np.ndarray, groups: np.ndarray, proba: bool = False
) -> np.ndarray:
    out = np.zeros((len(y), 3)) if proba else np.zeros(len(y))
    for train, test in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        model = make().fit(x[train], y[train])
        if proba:
            out[test] = model.predict_proba(x[test])
        else:
            out[test] = model.predict(x[test])
    return out


def _classification(truth: np.ndarray, guess: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Accuracy and macro-F1 with intervals over the sentences (`groups`)."""
    ids, codes = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(0)
    acc, f1 = [], []
    for _ in range(ROUNDS):
        pick = np.isin(codes, rng.integers(0, len(ids), len(ids)))
        acc.append(float((truth[pick] == guess[pick]).mean()))
        f1.append(float(f1_score(truth[pick], guess[pick], average="macro", labels=[0, 1, 2])))
    return {
        "accuracy": round(float((truth == guess).mean()), 4),
        "accuracy_ci": [round(float(v), 4) for v in np.percentile(acc, [2.5, 97.5])],
        "macro_f1": round(float(f1_score(truth, guess, average="macro", labels=[0, 1, 2])), 4),
        "macro_f1_ci": [round(float(v), 4) for v in np.percentile(f1, [2.5, 97.5])],
    }


def _claims(sure: np.ndarray, right: np.ndarray, target: float = 0.9) -> dict[str, Any]:
    """Agreement of stated claims by sureness, and the least sureness at which `target` agree."""
    order = np.argsort(-sure)
    agree = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    # The largest set of the surest claims whose agreement is at least the target; at least 30.
    ok = np.nonzero((agree >= target) & (np.arange(1, len(order) + 1) >= 30))[0]
    bins = np.quantile(sure, [0.0, 0.25, 0.5, 0.75, 1.0])
    table = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        pick = (sure >= lo) & (sure <= hi)
        table.append({"from": round(float(lo), 3), "to": round(float(hi), 3), "n": int(pick.sum()),
                      "agree": round(float(right[pick].mean()), 4)})  # fmt: skip
    threshold = float(sure[order][ok[-1]]) if len(ok) else None
    kept = sure >= threshold if threshold is not None else np.zeros(len(sure), bool)
    return {
        "claims": len(sure),
        "agree_all": round(float(right.mean()), 4),
        "by_sureness": table,
        "confidence": None if threshold is None else round(threshold, 4),
        "stated": round(float(kept.mean()), 4),
        "agree_stated": _mean_ci(right[kept]) if kept.any() else None,
    }


def score_semeval(
    reader: ReviewReader,
    sentences: Sequence[LabelledSentence],
    heads: dict[str, SentimentHead] | None = None,
    progress: Progress = None,
    pair_model: PairModel | None = None,
) -> dict[str, Any]:
    """Detection, polarity and claims on SemEval-2014 restaurant categories (module docstring).

    `heads`: sentiment heads to read polarity with, by name (default: the reader's own).
    `pair_model(aspects, texts, labels, test_aspects, test_texts)`: a model trained on the
    first (aspect, sentence) pairs that returns the probabilities of negative, neutral and
    positive for the test pairs; measured on the same folds as the heads (`finetuned_pair`).
    """
    heads = heads or {"reader": reader.sentiment}
    names = [a.name for a in reader.aspects]
    categories = [*names, MISC]
    passages = read_passages(reader, [s.text for s in sentences], progress)
    n = len(sentences)
    truth = np.array([[c in s.categories for c in categories] for s in sentences])
    # -- detection
    zero = np.zeros_like(truth)
    for i, p in enumerate(passages):
        found = {a for a in p.aspects if a >= 0}
        for a in found:
            zero[i, a] = True
        zero[i, -1] = not found
    vectors = np.stack([p.vector for p in passages])
    x = np.hstack([vectors, reader.detector.closeness(vectors)])
    learned = np.zeros_like(truth)
    rows = np.arange(n)
    for j in range(len(categories)):
        learned[:, j] = _cv_predict(
            lambda: LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced"), x, truth[:, j], rows
        ).astype(bool)
    detection = {"zero_shot": _detection(truth, zero), "learned": _detection(truth, learned)}
    # -- polarity of each labelled (sentence, category), the category given
    pairs = [(i, categories.index(c), POLARITIES.index(p)) for i, s in enumerate(sentences)
             for c, p in s.categories.items() if c in categories and p in POLARITIES]  # fmt: skip
    sent = np.array([i for i, _, _ in pairs])
    label = np.array([y for _, _, y in pairs])
    known = [a if a < len(names) else -1 for _, a, _ in pairs]
    majority = np.zeros(len(pairs))
    folds = list(GroupKFold(n_splits=FOLDS).split(sent, label, sent))
    for train, test in folds:
        majority[test] = np.bincount(label[train]).argmax()
    polarity: dict[str, Any] = {
        "pairs": len(pairs),
        "sentences": len(set(sent.tolist())),
        "share": {POLARITIES[k]: round(float((label == k).mean()), 4) for k in range(3)},
        "majority": _classification(label, majority, sent),
    }
    said = label != 1
    claims: dict[str, Any] = {}
    aspect_vectors = None
    kept = reader.sentiment
    try:
        for name, head in heads.items():
            reader.sentiment = head
            mood = head.polarity(vectors[sent]).astype(np.float64)
            read = [_aspect_vector(reader, passages[i], a) for i, a in zip(sent, known, strict=True)]
            aspect_vectors = np.stack([r[0] for r in read])
            clause = np.array([r[1] for r in read])
            for key, values in ((f"mood_{name}", mood), (f"reader_{name}", clause)):
                banded = np.zeros(len(pairs))
                for train, test in folds:
                    banded[test] = _classes(values[test], _band(values[train], label[train]))
                polarity[key] = _classification(label, banded, sent)
            claims[f"reader_{name}"] = _claims(np.abs(clause[said]), (clause[said] > 0) == (label[said] == 2))
    finally:
        reader.sentiment = kept
    assert aspect_vectors is not None
    onehot = np.eye(len(categories))[[a for _, a, _ in pairs]]

    def polarity_model() -> LogisticRegression:
        return LogisticRegression(C=2.0, max_iter=3000)

    p_sentence = _cv_predict(polarity_model, np.hstack([vectors[sent], onehot]), label, sent, proba=True)
    p_aspect = _cv_predict(
        polarity_model, np.hstack([vectors[sent], aspect_vectors, onehot]), label, sent, proba=True
    )
    polarity["learned_sentence"] = _classification(label, p_sentence.argmax(axis=1), sent)

    def read_by(name: str, proba: np.ndarray) -> None:
        """A model's class probabilities as a polarity row, and its leaning as claims."""
        polarity[name] = _classification(label, proba.argmax(axis=1), sent)
        lean = proba[:, 2] - proba[:, 0]
        claims[name] = _claims(np.abs(lean[said]), (lean[said] > 0) == (label[said] == 2))

    read_by("learned_aspect", p_aspect)
    if pair_model is not None:
        # The category as words ("anecdotes/miscellaneous": "anecdotes or miscellaneous").
        words = [categories[a].replace("/", " or ") for _, a, _ in pairs]
        texts = [sentences[i].text for i in sent]
        p_pair = np.zeros((len(pairs), 3))
        for train, test in folds:
            p_pair[test] = pair_model(
                [words[i] for i in train],
                [texts[i] for i in train],
                label[train],
                [words[i] for i in test],
                [texts[i] for i in test],
            )
        read_by("finetuned_pair", p_pair)
    return {"sentences": n, "categories": categories, "detection": detection,
            "polarity": polarity, "claims": claims}  # fmt: skip


def _detection(truth: np.ndarray, guess: np.ndarray) -> dict[str, Any]:
    tp = (truth & guess).sum(axis=1)

    def f1(rows: np.ndarray) -> float:
        t, g, both = rows[:, 0].sum(), rows[:, 1].sum(), rows[:, 2].sum()
        return float(2 * both / max(t + g, 1))

    stacked = np.stack([truth.sum(axis=1), guess.sum(axis=1), tp], axis=1)
    precision = float(tp.sum() / max(guess.sum(), 1))
    recall = float(tp.sum() / max(truth.sum(), 1))
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1(stacked), 4),
        "f1_ci": _interval(stacked, f1),
    }


def score_tripadvisor(
    reader: ReviewReader, reviews: Sequence[RatedReview], progress: Progress = None
) -> dict[str, Any]:
    """Per aspect: coverage and Spearman of the reader, the whole review and learned heads (module docstring).

    The sentiment head learns each review's overall rating after reading it, as the encoder
    role does, so a review is read by what the reviews before it taught.
    """
    texts = [f"{r.title}. {r.text}" if r.title else r.text for r in reviews]
    passages: list[Passage] = []
    for start in range(0, len(texts), CHUNK):
        chunk = reader.encode(texts[start : start + CHUNK])
        passages.extend(chunk)
        for passage, review in zip(chunk, reviews[start : start + CHUNK], strict=True):
            reader.learn(passage, review.overall)
        reader.commit()
        if progress is not None:
            progress(len(passages), len(texts))
    whole = np.array([float(reader.sentiment.polarity(p.vector)[0]) for p in passages])
    overall = np.array([r.overall for r in reviews])
    vectors = np.stack([p.vector for p in passages])
    out: dict[str, Any] = {"reviews": len(reviews), "aspects": {}}
    names = [a.name for a in reader.aspects]
    for name in names:
        j = names.index(name)
        rated = np.array([name in r.aspects for r in reviews])
        if rated.sum() < 50:
            continue
        idx = np.nonzero(rated)[0]
        rating = np.array([reviews[int(i)].aspects[name] for i in idx])
        read = [_aspect_vector(reader, passages[i], j) for i in idx]
        found = np.array([r[2] for r in read])
        aspect_polarity = np.array([r[1] for r in read])
        x = np.hstack([vectors[idx], np.stack([r[0] for r in read]), found[:, None]])
        # Read with the review's own rating beside it: the aspect as the overall, moved by its clauses.
        x_rated = np.hstack([x, overall[idx, None]])
        learned, anchored, alone = np.zeros(len(idx)), np.zeros(len(idx)), np.zeros(len(idx))
        for train, test in KFold(n_splits=FOLDS, shuffle=True, random_state=0).split(x):
            learned[test] = Ridge(alpha=10.0).fit(x[train], rating[train]).predict(x[test])
            anchored[test] = Ridge(alpha=10.0).fit(x_rated[train], rating[train]).predict(x_rated[test])
            rated_only = overall[idx, None]
            alone[test] = Ridge(alpha=10.0).fit(rated_only[train], rating[train]).predict(rated_only[test])
        beyond = rating - overall[idx]
        entry: dict[str, Any] = {"rated": int(rated.sum()), "coverage": round(float(found.mean()), 4)}
        everyone = np.ones(len(idx), bool)
        for key, values, moved, mask in (
            ("reader", aspect_polarity, aspect_polarity - whole[idx], found),
            ("whole_review", whole[idx], whole[idx], found),
            ("learned", learned, learned, everyone),
            ("learned_with_rating", anchored, anchored - overall[idx], everyone),
            ("rating_only", alone, alone - overall[idx], everyone),
            ("whole_review_all", whole[idx], whole[idx], everyone),
        ):
            entry[key] = {
                "n": int(mask.sum()),
                "spearman": _spearman(values[mask], rating[mask]),
                "beyond_overall": _spearman(moved[mask], beyond[mask]),
            }
        out["aspects"][name] = entry
    return out


def _spearman(values: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    rows = np.stack([values, target], axis=1)

    def rho(r: np.ndarray) -> float:
        if len(r) < 3 or np.ptp(r[:, 0]) == 0 or np.ptp(r[:, 1]) == 0:
            return float("nan")
        return float(spearmanr(r[:, 0], r[:, 1]).statistic)

    return {"value": round(rho(rows), 4), "ci": _interval(rows, rho)}
