"""Encoder throughput on CUDA: streamrec's TransformerEncoder against plain baselines, same run.

Needs only torch, transformers (and sentence-transformers, if installed), so it runs on a GPU
machine that has none of the workers' other dependencies. From the repository's root:

    python3 scripts/bench_encoder_cuda.py MODEL_DIR REVIEWS_CSV_ZIP [N_TEXTS] [OUT_JSON]

MODEL_DIR is a local copy of the encoder (e.g. the packaged all-MiniLM-L6-v2), REVIEWS_CSV_ZIP
the Amazon reviews CSV (zipped) whose `reviewText` column is encoded. It prints texts/s of
streamrec's encoder in bf16 and fp16, of plain transformers (fp32, batches of 32 padded to the
longest), of sentence-transformers' `encode`, and of a bert-base-size encoder (random weights:
its speed does not depend on them).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Callable
from typing import Any


def _encoder_class() -> Any:
    """streamrec.model.text.encoder alone: the package's other modules need what is not installed."""
    sys.path.insert(0, os.getcwd())
    for name, path in (("streamrec", "streamrec"), ("streamrec.model", "streamrec/model")):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules.setdefault(name, module)
    from streamrec.model.text.encoder import TransformerEncoder

    return TransformerEncoder


def _reviews(path: str, n: int) -> list[str]:
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        rows = list(csv.DictReader(io.TextIOWrapper(z.open(name), encoding="utf-8")))
    texts = [r["reviewText"] for r in rows if r.get("reviewText", "").strip()]
    return (texts * (n // len(texts) + 1))[:n]


def _rate(fn: Callable[[], Any], n: int, repeats: int = 2) -> tuple[Any, float]:
    """The result of `fn` and the best texts/s over `repeats` runs."""
    import torch

    best, out = float("inf"), None
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return out, n / best


def _plain(model_dir: str, texts: list[str]) -> Callable[[], Any]:
    """Batches of 32 in input order, padded to the longest, fp32, no_grad, mean pooling."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    net = AutoModel.from_pretrained(model_dir, dtype=torch.float32).cuda().eval()

    def run() -> Any:
        out = []
        with torch.no_grad():
            for lo in range(0, len(texts), 32):
                batch = tokenizer(
                    texts[lo : lo + 32], padding=True, truncation=True, max_length=256, return_tensors="pt"
                ).to("cuda")
                hidden = net(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(pooled, dim=1).cpu())
        return torch.cat(out).numpy()

    return run


def main(model_dir: str, reviews: str, n: int, out_json: str) -> dict[str, Any]:
    import torch

    encoder_class = _encoder_class()
    texts = _reviews(reviews, n)
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "texts": n, "torch": torch.__version__}
    print(f"{n} real reviews; {result['device']}; torch {torch.__version__}", flush=True)
    vectors = {}
    for dtype in ("bfloat16", "float16"):
        encoder = encoder_class(model=model_dir, device="cuda", dtype=dtype, max_length=256)
        encoder.warm_up()
        encoder.encode(texts[:2048])
        vectors[dtype], rate = _rate(lambda e=encoder: e.encode(texts), n)
        result[f"streamrec_{dtype}_texts_per_s"] = round(rate, 1)
        print(f"streamrec {dtype}: {rate:,.0f} texts/s", flush=True)
        del encoder
        torch.cuda.empty_cache()

    plain = _plain(model_dir, texts)
    plain()
    baseline, rate = _rate(plain, n, repeats=1)
    result["baseline_texts_per_s"] = round(rate, 1)
    result["ratio_bf16"] = round(result["streamrec_bfloat16_texts_per_s"] / rate, 2)
    cosine = (vectors["bfloat16"] * baseline).sum(1)
    result["bf16_vs_fp32_cosine_min"] = round(float(cosine.min()), 5)
    print(f"plain transformers fp32, batches of 32: {rate:,.0f} texts/s", flush=True)
    torch.cuda.empty_cache()

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        pass
    else:
        st = SentenceTransformer(model_dir, device="cuda")
        st.encode(texts[:2048], batch_size=32)
        _, rate = _rate(lambda: st.encode(texts, batch_size=32), n, repeats=1)
        result["sentence_transformers_texts_per_s"] = round(rate, 1)
        print(f"sentence-transformers fp32, batches of 32: {rate:,.0f} texts/s", flush=True)

    from transformers import BertConfig, BertModel

    base = tempfile.mkdtemp()
    BertModel(BertConfig()).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(os.path.join(model_dir, name), base)
    encoder = encoder_class(model=base, device="cuda", dtype="bfloat16", max_length=256)
    encoder.warm_up()
    encoder.encode(texts[:2048])
    _, rate = _rate(lambda: encoder.encode(texts), n)
    result["bert_base_size_bfloat16_texts_per_s"] = round(rate, 1)
    print(f"bert-base-size bf16: {rate:,.0f} texts/s", flush=True)

    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    print(
        json.dumps(
            main(
                args[0],
                args[1],
                int(args[2]) if len(args) > 2 else 16384,
                args[3] if len(args) > 3 else "bench-encoder-cuda.json",
            ),
            indent=1,
        )
    )
