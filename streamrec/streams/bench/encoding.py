"""The encoder measurement as `streamrec bench` runs it, and what bounds it.

`bench_encoder` (streamrec's encoder against plain transformers and sentence-transformers,
on the same real reviews, in this process) gives the figures. Beside them:

* the padding bound: padded tokens of the baseline's fixed batches of 32 over those of
  streamrec's length-sorted batches, on the same texts. Almost all of a BERT's work is
  per padded token, so this is about the most that length bucketing alone can gain;
* the encoder at another dtype (`--dtype`), timed on the same texts right after, against the
  same baseline figure;
* on a CPU, every way to read and what each costs in quality: PyTorch float32, ONNX Runtime
  float32, PyTorch bfloat16 (the default where the CPU multiplies bf16 natively), int8 dynamic
  quantization, and windows of 128 tokens instead of `max_length`: texts/s, and each vector's
  cosine to the float32 vector at `max_length` (the bar: at least 0.99 for every text).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.onnx_runtime import onnx_available
from streamrec.model.text.weights import locate_model
from streamrec.streams.bench.encoder import BASELINE_BATCH, bench_encoder

__all__ = ["measure_encoder", "padded_tokens"]

Say = Callable[[str], None]
#: streamrec's batch limits on a CPU and on CUDA (texts, padded tokens), as `TransformerEncoder` sets them.
_LIMITS = {"cpu": (64, 4096), "cuda": (256, 32768)}


def padded_tokens(lengths: Sequence[int], batch_size: int, budget: int | None = None) -> int:
    """Tokens a forward pass pays for: in input order in fixed batches (no `budget`), or
    longest first in batches within `batch_size` texts and `budget` padded tokens.

    >>> padded_tokens([3, 10, 2, 9], 2), padded_tokens([3, 10, 2, 9], 2, budget=100)
    (38, 26)
    """
    lengths = list(lengths)
    if budget is None:
        return sum(
            max(lengths[i : i + batch_size]) * len(lengths[i : i + batch_size])
            for i in range(0, len(lengths), batch_size)
        )
    ordered = sorted(lengths, reverse=True)
    total, i = 0, 0
    while i < len(ordered):
        rows = max(1, min(batch_size, budget // max(ordered[i], 1), len(ordered) - i))
        total += ordered[i] * rows
        i += rows
    return total


def measure_encoder(
    texts: list[str],
    device: str,
    model: str | None,
    max_length: int,
    repeats: int,
    dtype: str,
    say: Say,
) -> dict[str, Any]:
    from transformers import AutoTokenizer

    result = bench_encoder(
        texts, device=device, model=model, max_length=max_length, repeats=repeats, progress=say
    )
    tokenizer = AutoTokenizer.from_pretrained(str(locate_model(model)[0]), local_files_only=True)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    kind = "cuda" if str(result["device"]).startswith("cuda") else "cpu"
    baseline, ours = padded_tokens(lengths, BASELINE_BATCH), padded_tokens(lengths, *_LIMITS[kind])
    result["padding"] = {
        "real_tokens": int(np.sum(lengths)),
        "baseline_padded_tokens": baseline,
        "streamrec_padded_tokens": ours,
        "bound": baseline / ours,
    }
    encoder = (
        None
        if dtype == "auto"
        else TransformerEncoder(model, device=device, dtype=dtype, max_length=max_length)
    )
    if encoder is not None and encoder.dtype != result["dtype"]:
        say(f"encoder at {encoder.dtype}")
        encoder.encode(texts[:64])
        best = float("inf")
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            encoder.encode(texts)
            if kind == "cuda":
                import torch

                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
        rate = len(texts) / best
        say(f"streamrec at {encoder.dtype}: {rate:.1f} texts/s")
        result["default_dtype"] = {k: result[k] for k in ("dtype", "texts_per_s", "ratio")}
        result.update(dtype=encoder.dtype, texts_per_s=rate, ratio=rate / result["baseline_texts_per_s"])
    if kind == "cpu":
        result["variants"] = _variants(texts, model, max_length, repeats, say)
    return result


#: Least cosine to float32 that every text's vector must keep for a faster variant to be a default.
VARIANT_BAR = 0.99


def _variants(texts: list[str], model: str | None, max_length: int, repeats: int, say: Say) -> dict[str, Any]:
    """Faster ways to read on a CPU, each timed on the same texts and compared with float32's vectors."""
    reference = TransformerEncoder(model, device="cpu", dtype="float32", max_length=max_length)
    exact = reference.encode(texts)
    candidates: dict[str, dict[str, Any]] = {
        "torch": {"dtype": "float32", "max_length": max_length, "backend": "torch"},
        "bfloat16": {"dtype": "bfloat16", "max_length": max_length, "backend": "torch"},
        "int8": {"dtype": "int8", "max_length": max_length, "backend": "torch"},
    }
    if onnx_available():
        candidates["onnx"] = {"dtype": "float32", "max_length": max_length, "backend": "onnx"}
    if max_length > 128:
        candidates["max_length_128"] = {"dtype": "float32", "max_length": 128, "backend": "auto"}
    out: dict[str, Any] = {}
    for name, params in candidates.items():
        encoder = TransformerEncoder(model, device="cpu", **params)
        params = {**params, "backend": encoder.backend}
        encoder.encode(texts[:64])
        best, vectors = float("inf"), exact
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            vectors = encoder.encode(texts)
            best = min(best, time.perf_counter() - started)
        cosines = (vectors * exact).sum(axis=1)
        out[name] = {
            **params,
            "texts_per_s": len(texts) / best,
            "min_cosine_to_float32": float(cosines.min()),
            "mean_cosine_to_float32": float(cosines.mean()),
            "holds": bool(cosines.min() >= VARIANT_BAR),
        }
        say(f"encoder {name}: {len(texts) / best:.1f} texts/s, least cosine to float32 {cosines.min():.4f}")
    return out
