"""Texts encoded before the stream: catalog texts and reviews in batches, and reviews read, with progress."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import FloatArray
from streamrec.model.text.reader import Passage, ReviewReader

#: Another encoder's vectors: of each catalog item's text, and of each review (by its event's row).
Vectors = tuple[dict[str, FloatArray], dict[int, FloatArray]]


def encode_texts(
    cached: CachedEncoder, texts: list[str], phase: str, progress: Callable[[str, int, int], None] | None
) -> FloatArray:
    """The texts' vectors, encoded in batches (and cached), with progress."""
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(phase, done, len(texts))

    if progress is not None:
        progress(phase, 0, len(texts))
    return cached.encode(texts, progress=advance) if texts else np.zeros((0, cached.dim), np.float32)


def read_passages(
    reader: ReviewReader, texts: list[str], phase: str, progress: Callable[[str, int, int], None] | None
) -> list[Passage]:
    """Each review as `reader` encodes it, a slice at a time (to show progress)."""
    out: list[Passage] = []
    step = 512
    for start in range(0, len(texts), step):
        if progress is not None:
            progress(phase, start, len(texts))
        out.extend(reader.encode(texts[start : start + step]))
    if progress is not None:
        progress(phase, len(texts), len(texts))
    return out
