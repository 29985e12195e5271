"""Text vectors for an evaluation run: encoded once, cached in memory and on disk.

Both what `encode` gives (a vector per text) and what `read` gives (a vector per text and one
per span of it, from the same pass) are cached, each under its text (and spans).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streamrec.model.base import FloatArray, TextEncoder

__all__ = ["CachedEncoder"]


#: New rows kept in memory before the disk cache is written again (it is written whole each time).
SAVE_EVERY = 50_000


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
    >>> class Spans(Letters):
    ...     def read(self, texts, spans):
    ...         return self.encode(texts), self.encode([t[a:b] for t, s in zip(texts, spans) for a, b in s])
    >>> vectors, pieces = CachedEncoder(Spans()).read(["ab", "b"], [[(0, 1), (1, 2)], []])
    >>> vectors.shape, pieces.round(2).tolist()
    ((2, 2), [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None = None, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.dim = encoder.dim
        self.version = encoder.version
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        #: Per key, the rows it stands for: one (a text's vector) or 1 + its spans (`read`).
        self._memory: dict[str, FloatArray] = {}
        self._disk_loaded = False
        self._unsaved = 0
        self.n_encoded = 0
        self.n_cached = 0

    @staticmethod
    def key(text: str, spans: Sequence[tuple[int, int]] | None = None) -> str:
        raw = text if spans is None else f"{text}\x00{list(spans)}"
        return hashlib.sha1(raw.encode("utf-8"), usedforsecurity=False).hexdigest()

    def _file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        slug = hashlib.sha1(self.version.encode(), usedforsecurity=False).hexdigest()[:16]
        return self.cache_dir / f"rows-{slug}.npz"

    def _load_disk(self) -> None:
        self._disk_loaded = True
        path = self._file()
        if path is None or not path.is_file():
            return
        with np.load(path, allow_pickle=False) as data:
            if str(data["version"]) != self.version or data["vectors"].shape[1:] != (self.dim,):
                return
            rows, vectors = data["rows"], data["vectors"]
            ends = np.cumsum(rows)
            for key, end, n in zip(data["keys"].tolist(), ends.tolist(), rows.tolist(), strict=True):
                self._memory.setdefault(key, vectors[end - n : end])

    def save(self) -> None:
        """Write new vectors to the disk cache (all vectors of this version in one file).

        Done every `SAVE_EVERY` new rows and when the caller is done (`run_prequential` is).
        """
        path = self._file()
        if path is None or not self._unsaved:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._memory)
        rows = np.array([len(self._memory[k]) for k in keys], dtype=np.int64)
        vectors = np.concatenate([self._memory[k] for k in keys]).astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), rows=rows, vectors=vectors, version=np.array(self.version))
        tmp.replace(path)
        self._unsaved = 0

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> FloatArray:
        """Vectors of `texts`, in order; each distinct text is encoded once."""
        keys = [self.key(t) for t in texts]
        rows = self._rows(keys, texts, None, progress)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([rows[k][0] for k in keys])

    def read(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """`encoder.read(texts, spans)`, each distinct text and spans read once."""
        keys = [self.key(t, s) for t, s in zip(texts, spans, strict=True)]
        rows = self._rows(keys, texts, spans, progress)
        empty = np.zeros((0, self.dim), dtype=np.float32)
        if not keys:
            return empty, empty
        vectors = np.stack([rows[k][0] for k in keys])
        pieces = [rows[k][1:] for k in keys]
        return vectors, np.concatenate(pieces) if pieces else empty

    def unknown_share(self, texts: Sequence[str]) -> FloatArray:
        """The encoder's `unknown_share`, where it has one (else 0 for every text)."""
        share = getattr(self.encoder, "unknown_share", None)
        return np.asarray(share(texts), dtype=np.float32) if share else np.zeros(len(texts), np.float32)

    def _rows(
        self,
        keys: list[str],
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None,
        progress: Callable[[int], None] | None,
    ) -> dict[str, FloatArray]:
        if not self._disk_loaded:
            self._load_disk()
        missing: dict[str, int] = {}
        for n, key in enumerate(keys):
            if key not in self._memory and key not in missing:
                missing[key] = n
        self.n_cached += len(keys) - len(missing)
        if missing:
            # Similar lengths in one batch waste less padding.
            todo = sorted(missing.items(), key=lambda kv: len(texts[kv[1]]))
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                batch = [texts[n] for _, n in chunk]
                if spans is None:
                    found = np.asarray(self.encoder.encode(batch), dtype=np.float32)
                    parts = [found[j : j + 1] for j in range(len(chunk))]
                else:
                    cut = [spans[n] for _, n in chunk]
                    vectors, pieces = self.encoder.read(batch, cut)  # type: ignore[attr-defined]
                    ends = np.cumsum([len(c) for c in cut])
                    parts = [
                        np.vstack([vectors[j : j + 1], pieces[end - len(c) : end]])
                        for j, (c, end) in enumerate(zip(cut, ends, strict=True))
                    ]
                for (key, _), rows in zip(chunk, parts, strict=True):
                    self._memory[key] = rows.astype(np.float32)
                self._unsaved += len(chunk)
                self.n_encoded += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if self._unsaved >= SAVE_EVERY:
                self.save()
        return {key: self._memory[key] for key in keys}
