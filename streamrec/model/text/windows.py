"""Token windows of the texts an encoder reads, and the batches they are cut into."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.model.errors import EncoderError

__all__ = ["batches", "special_tokens", "token_windows"]


def token_windows(
    tokenizer: Any,
    texts: list[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    prefix: list[int],
    suffix: list[int],
    max_tokens: int,
) -> tuple[list[list[int]], list[int], list[npt.NDArray[np.int64]], int]:
    """Token windows of every text (special tokens around each), the text of each window,
    and per window the span (global index, -1 for none) each of its tokens falls in."""
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    body = max_tokens - len(prefix) - len(suffix)
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
        pad = np.full(len(prefix), -1, dtype=np.int64)
        tail = np.full(len(suffix), -1, dtype=np.int64)
        for lo in range(0, max(len(ids), 1), body):
            windows.append([*prefix, *ids[lo : lo + body], *suffix])
            owner.append(i)
            members.append(np.concatenate([pad, of_token[lo : lo + body], tail]))
    return windows, owner, members, first


def batches(lengths: npt.NDArray[np.int64], batch_size: int, budget: int) -> list[tuple[int, int]]:
    """Cut lengths sorted longest first into `[lo, hi)` spans within both limits."""
    spans: list[tuple[int, int]] = []
    lo, n = 0, len(lengths)
    while lo < n:
        # Every row pads to the first (longest) one; a text longer than the budget goes alone.
        rows = max(1, min(batch_size, budget // max(int(lengths[lo]), 1), n - lo))
        spans.append((lo, lo + rows))
        lo += rows
    return spans


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the model's tokenizer puts before and after a text's own."""
    bare = list(tokenizer("word", add_special_tokens=False)["input_ids"])
    built = list(tokenizer("word", add_special_tokens=True)["input_ids"])
    for at in range(len(built) - len(bare) + 1):
        if built[at : at + len(bare)] == bare:
            return [int(t) for t in built[:at]], [int(t) for t in built[at + len(bare) :]]
    raise EncoderError("the tokenizer's special tokens must surround a text's own, got none found")
