"""Should the encoder and the sentiment head give way to sentence-transformers and river? Measured."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamrec.eval.measures import sentiment_auc
from streamrec.eval.sample import load_sample
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.opinions import segments
from streamrec.model.text.sentiment import SentimentHead, rating_label
from streamrec.model.text.weights import locate_model

THREADS = 1  # torch, ONNX Runtime and sentence-transformers alike
BATCH = 32
REPEATS = 3
MAX_LENGTH = 256  # MiniLM's max_seq_length in its sentence_bert_config.json
N_TEXTS = 512
# Speed is the median of REPEATS passes over every STRIDE-th of the texts (same mix of lengths):
# 3 passes over all 512 per encoder would cost over 3 CPU minutes on this 2-core machine.
STRIDE = 8

Encode = Callable[[list[str]], np.ndarray]
#: A head's score of review i before learning it, and its learning step on review i.
Head = tuple[Callable[[int], float], Callable[[int], object]]


def load_reviews() -> list[tuple[str, float]]:
    """Every review of the packaged sample, in time order: (text, rating)."""
    rows = load_sample()
    return [(r["text"], float(r["rating"])) for r in rows if "rating" in r and r.get("text")]


def rate(encode: Encode, texts: list[str]) -> tuple[np.ndarray, float, float]:
    """The vectors of `texts` and texts/s of that pass; the median texts/s of `REPEATS` passes
    over every `STRIDE`-th text. A warm-up batch first."""
    encode(texts[:BATCH])
    start = time.perf_counter()
    vectors = np.asarray(encode(texts), dtype=np.float32)
    whole = len(texts) / (time.perf_counter() - start)
    some, speeds = texts[::STRIDE], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        encode(some)
        speeds.append(len(some) / (time.perf_counter() - start))
    return vectors, whole, statistics.median(speeds)


def ours(backend: str, max_length: int = MAX_LENGTH, export: Path | None = None) -> TransformerEncoder:
    return TransformerEncoder(
        None, device="cpu", dtype="float32", backend=backend, max_length=max_length,
        batch_size=BATCH, num_threads=THREADS, export_dir=export,
    )  # fmt: skip


def st_encoders(path: Path) -> tuple[Any, dict[str, Encode | str]]:
    """sentence-transformers with torch, and with ONNX Runtime where optimum can give it."""
    from sentence_transformers import SentenceTransformer

    def wrap(model: Any) -> Encode:
        def encode(texts: list[str]) -> np.ndarray:
            out: np.ndarray = model.encode(
                texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )  # fmt: skip
            return out

        return encode

    st = SentenceTransformer(str(path), device="cpu")
    st.max_seq_length = MAX_LENGTH
    found: dict[str, Encode | str] = {"st torch": wrap(st)}
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        st_onnx = SentenceTransformer(
            str(path), device="cpu", backend="onnx", model_kwargs={"session_options": options}
        )
        st_onnx.max_seq_length = MAX_LENGTH
        found["st onnx"] = wrap(st_onnx)
    except Exception as exc:  # no optimum, or one that does not fit this transformers
        cause = exc.__cause__ or exc.__context__ or exc
        found["st onnx"] = f"not available: {type(cause).__name__}: {str(cause).splitlines()[0][:120]}"
    return st, found


def span_check(st: Any, enc: TransformerEncoder, texts: list[str]) -> float:
    """Clause vectors pooled from sentence-transformers' token_embeddings plus offsets from a second
    tokenizer call (glue we would write), against `enc.read`: the max absolute difference."""
    spans = [segments(t) for t in texts]
    _, want = enc.read(texts, spans)
    tokens = st.encode(texts, output_value="token_embeddings", batch_size=BATCH, show_progress_bar=False)
    offsets = st.tokenizer(texts, return_offsets_mapping=True, truncation=True, max_length=MAX_LENGTH)
    got = []
    for states, bounds, cut in zip(tokens, offsets["offset_mapping"], spans, strict=True):
        b = np.asarray(bounds, dtype=np.int64)
        starts = np.array([s for s, _ in cut], dtype=np.int64)
        ends = np.array([e for _, e in cut], dtype=np.int64)
        k = np.searchsorted(starts, b[:, 1], side="left") - 1
        k = np.where((k >= 0) & (b[:, 0] < ends[np.maximum(k, 0)]) & (b[:, 1] > b[:, 0]), k, -1)
        h = states.float().numpy()
        for j in range(len(cut)):
            v = h[k == j].mean(axis=0) if (k == j).any() else h.mean(axis=0)
            got.append(v / np.linalg.norm(v))
    return float(np.abs(np.asarray(got) - want).max())


def part_a(reviews: list[tuple[str, float]], export: Path) -> tuple[TransformerEncoder, np.ndarray]:
    """Vectors and speed of both encoders on the same texts; returns ours for part B."""
    texts = [t for t, _ in reviews[:N_TEXTS]]
    path, _ = locate_model(None)
    torch.set_num_threads(THREADS)
    st, st_found = st_encoders(path)
    lengths = np.array([len(ids) for ids in st.tokenizer(texts, verbose=False)["input_ids"]])
    fit, long_ = lengths <= MAX_LENGTH, (lengths > MAX_LENGTH) & (lengths <= 512)
    theirs_tokens = int(np.minimum(lengths, MAX_LENGTH).sum())
    # Ours reads a long text in windows of MAX_LENGTH, [CLS] and [SEP] around each.
    ours_tokens = int((lengths - 2).sum()) + 2 * int(((lengths - 3) // (MAX_LENGTH - 2) + 1).sum())
    print(
        f"(A) {len(texts)} review texts, {int((~fit).sum())} longer than {MAX_LENGTH} tokens (max "
        f"{lengths.max()}); {THREADS} thread(s); batch {BATCH} (ours: and its default token budget, "
        f"2048 torch / 512 onnx); texts/s of the 512-text pass, and median of {REPEATS} passes over "
        f"{len(texts[::STRIDE])} (every {STRIDE}th)",
        flush=True,
    )
    torch_enc, onnx_enc = ours("torch"), ours("onnx", export=export)
    candidates: dict[str, Encode | str] = {"ours torch": torch_enc.encode, "ours onnx": onnx_enc.encode}
    candidates.update(st_found)
    results: dict[str, tuple[np.ndarray, float, float]] = {}
    for name, encode in candidates.items():
        if isinstance(encode, str):
            print(f"    {name}: {encode}", flush=True)
            continue
        results[name] = rate(encode, texts)
    ref = results["st torch"][0]
    print(f"{'encoder':<11} {'t/s 512':>8} {'t/s med3':>8} {'tokens read':>11} {'maxdiff all':>11} "
          f"{'<=256 tok':>10} {'>256 tok':>9}   (maxdiff: against st torch, L2-normalized)")  # fmt: skip
    for name, (vectors, whole, speed) in results.items():
        d = np.abs(vectors - ref).max(axis=1)
        read = theirs_tokens if name.startswith("st") else ours_tokens
        print(f"{name:<11} {whole:8.1f} {speed:8.1f} {read:11d} {d.max():11.2e} {d[fit].max():10.2e} "
              f"{d[~fit].max() if (~fit).any() else 0.0:9.2e}")  # fmt: skip
    # Long texts: ours reads every token in windows, sentence-transformers truncates. At
    # max_length 512 both read the texts of 257-512 tokens whole: equal vectors or not?
    picked = [t for t, keep in zip(texts, long_, strict=True) if keep]
    if picked:
        st.max_seq_length = 512
        theirs = np.asarray(candidates["st torch"](picked))  # type: ignore[operator]
        gap = np.abs(ours("torch", 512).encode(picked) - theirs)
        st.max_seq_length = MAX_LENGTH
        print(f"    {len(picked)} texts of 257-512 tokens, both at max_length 512: maxdiff {gap.max():.2e}")
    short = [t for t, keep in zip(texts, fit, strict=True) if keep][:32]
    span_gap = span_check(st, torch_enc, short)
    print(
        "    token_embeddings: yes (per text, truncated, no offsets, no windows); clause vectors from "
        f"them + a 2nd tokenizer call vs ours.read, {len(short)} texts: maxdiff {span_gap:.2e}"
    )
    return onnx_enc, results["ours onnx"][0]


def part_b(reviews: list[tuple[str, float]], enc: TransformerEncoder, done: np.ndarray) -> None:
    """Prequential AUC and learning-step cost of our head and of river's logistic regression."""
    from river import linear_model, optim
    from river.utils import VectorDict

    vectors = np.concatenate([done, enc.encode([t for t, _ in reviews[len(done) :]])])
    ratings = [r for _, r in reviews]
    feats = [dict(enumerate(v.tolist())) for v in vectors]
    labels = [rating_label(r) for r in ratings]
    # Our head's class weight, known before each step: total / (2 * count of the review's class).
    seen = [0, 0]
    weights: list[float] = []
    for label in labels:
        if label is None:
            weights.append(0.0)
            continue
        seen[label] += 1
        weights.append(sum(seen) / (2.0 * seen[label]))
    prior = SentimentHead.from_anchors(enc).prior

    def head(scale: float) -> Head:
        h = SentimentHead.from_anchors(enc, scale=scale)
        return (lambda i: float(h.logits(vectors[i : i + 1])[0])), (lambda i: h.learn(vectors[i], ratings[i]))

    def river(weighted: bool, start: bool) -> Head:
        m: Any = linear_model.LogisticRegression(optimizer=optim.SGD(0.2), l2=1e-4, intercept_lr=0.02)
        if start:  # private: river's initializer gives one value for every feature, not a vector
            m._weights = VectorDict(dict(enumerate(prior.tolist())), optim.initializers.Zeros())
        return (lambda i: float(m.predict_proba_one(feats[i])[True])), (
            lambda i: m.learn_one(feats[i], labels[i] == 1, w=weights[i] if weighted else 1.0)
        )

    rows: dict[str, Callable[[], Head]] = {
        "ours (prior x10, class w)": lambda: head(10.0),
        "ours, no prior": lambda: head(0.0),
        "river SGD .2, l2 1e-4": lambda: river(False, False),
        "river + w=class weight": lambda: river(True, False),
        "river + w + prior start*": lambda: river(True, True),
    }
    n = sum(label is not None for label in labels)
    print(f"\n(B) {len(reviews)} reviews encoded once by ours ({enc.backend}); {n} rated 1-2/4-5 learned, "
          f"{labels.count(0)} negative; median of {REPEATS} runs")  # fmt: skip
    print(f"{'head':<26} {'us/learn':>9} {'us/score':>9} {'AUC':>7}")
    for name, make in rows.items():
        learn_us, score_us = [], []
        for _ in range(REPEATS):
            score, learn = make()
            verdicts, t_learn, t_score = [], 0.0, 0.0
            for i, label in enumerate(labels):
                if label is None:
                    continue
                t0 = time.perf_counter()
                verdicts.append((score(i), ratings[i]))
                t1 = time.perf_counter()
                learn(i)
                t_learn += time.perf_counter() - t1
                t_score += t1 - t0
            learn_us.append(t_learn / n * 1e6)
            score_us.append(t_score / n * 1e6)
        auc = sentiment_auc(verdicts)["auc"]
        print(f"{name:<26} {statistics.median(learn_us):9.1f} {statistics.median(score_us):9.1f} {auc!s:>7}")
    print("    * river's weights set through a private attribute; its l2 still pulls toward 0, not the prior")


def main() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {THREADS}", flush=True)
    reviews = load_reviews()
    with tempfile.TemporaryDirectory(prefix="streamrec-libraries-") as export:
        enc, done = part_a(reviews, Path(export))
        part_b(reviews, enc, done)


if __name__ == "__main__":
    main()
