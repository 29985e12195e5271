"""Text vectors for an evaluation run: encoded once, cached in memory and on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streamrec.model.base import FloatArray, TextEncoder

__all__ = ["CachedEncoder"]


class CachedEncoder:
    """A text encoder with an in-memory cache and, optionally, an on-disk one.

    Vectors are keyed by the encoder's `version` and a hash of the text, so a change of
    model or pooling never reuses stale vectors. Long review texts are the cost of an
    evaluation run; the disk cache makes a second run on the same data nearly free.

    Parameters
    ----------
    encoder
        Any `TextEncoder`.
    cache_dir
        Where to keep vectors between runs (None: memory only).
    batch_size
        Texts encoded per call to the encoder (progress is reported per batch).

    Examples
    --------
    >>> class Letters:
    ...     dim, version = 2, "letters-v1"
    ...     def encode(self, texts):
    ...         v = np.array([[t.count("a"), t.count("b")] for t in texts], dtype=np.float32) + 1e-6
    ...         return v / np.linalg.norm(v, axis=1, keepdims=True)
    >>> enc = CachedEncoder(Letters())
    >>> enc.encode(["aa", "b", "aa"]).round(2).tolist()
    [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    >>> enc.n_encoded, enc.n_cached
    (2, 1)
    """

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None = None, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.dim = encoder.dim
        self.version = encoder.version
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self._memory: dict[str, FloatArray] = {}
        self._disk_loaded = False
        self._unsaved: dict[str, FloatArray] = {}
        self.n_encoded = 0
        self.n_cached = 0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def _file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        slug = hashlib.sha1(self.version.encode(), usedforsecurity=False).hexdigest()[:16]
        return self.cache_dir / f"vectors-{slug}.npz"

    def _load_disk(self) -> None:
        self._disk_loaded = True
        path = self._file()
        if path is None or not path.is_file():
            return
        with np.load(path, allow_pickle=False) as data:
            if str(data["version"]) != self.version or data["vectors"].shape[1:] != (self.dim,):
                return
            for key, vector in zip(data["keys"].tolist(), data["vectors"], strict=True):
                self._memory.setdefault(key, vector)

    def save(self) -> None:
        """Write new vectors to the disk cache (all vectors of this version in one file)."""
        path = self._file()
        if path is None or not self._unsaved:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._memory)
        vectors = np.stack([self._memory[k] for k in keys]).astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=vectors, version=np.array(self.version))
        tmp.replace(path)
        self._unsaved.clear()

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> FloatArray:
        """Vectors of `texts`, in order; each distinct text is encoded once."""
        if not self._disk_loaded:
            self._load_disk()
        keys = [self.key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._memory and key not in missing:
                missing[key] = text
        self.n_cached += len(texts) - len(missing)
        if missing:
            # Similar lengths in one batch waste less padding.
            todo = sorted(missing.items(), key=lambda kv: len(kv[1]))
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                vectors = np.asarray(self.encoder.encode([t for _, t in chunk]), dtype=np.float32)
                for (key, _), vector in zip(chunk, vectors, strict=True):
                    self._memory[key] = vector
                    self._unsaved[key] = vector
                self.n_encoded += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            self.save()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])
