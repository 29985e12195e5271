"""Reading a review: its vector, its polarity and its opinions, from one encoder pass.

`ReviewReader` is the one place where a review is read. The encoder role, the evaluation,
`streamrec opinions` and the tests all call it; nothing else segments a review or detects
what its clauses speak of.

1. **Encode** (`encode`): the review as a person reads it (`opinions.readable`) is cut into
   clauses (`opinions.segments`) and read by the encoder once: its vector, and each clause's
   vector pooled from the token states of that same pass (`TransformerEncoder.read`). Each
   clause's aspect is detected from its vector (`opinions.AspectDetector`).
2. **Judge** (`judge`): the sentiment head reads the review's polarity and each clause's; a
   clause that speaks of an aspect is an `Opinion` with its own polarity, not the review's.
3. **Learn** (`learn`): a rated review then teaches the head (`sentiment.SentimentHead`). What
   it learns is read from the next `commit` on: readings never depend on how a stream was cut
   into batches, and a role restarted from its checkpoint reads every review it reads again
   exactly as it read it the first time.

`clauses="apart"` encodes each clause again as a text of its own, as streamrec did before;
kept to measure the one-pass reading against (docs/evaluation.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from streamrec.model.base import FloatArray, TextEncoder
from streamrec.model.errors import StreamrecError
from streamrec.model.text.opinions import (
    DEFAULT_ASPECTS,
    Aspect,
    AspectDetector,
    Opinion,
    quote,
    readable,
    segments,
)
from streamrec.model.text.sentiment import SentimentHead

__all__ = ["Passage", "Reading", "ReviewReader", "SpanEncoder"]


@runtime_checkable
class SpanEncoder(TextEncoder, Protocol):
    """A text encoder that also pools character spans of each text from the same pass."""

    def read(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[FloatArray, FloatArray]: ...


@dataclass(frozen=True)
class Passage:
    """What one encoder pass gives of a review: its vector, its clauses and theirs, their aspects."""

    #: The review as a person reads it; every span is of this text.
    text: str
    vector: FloatArray
    spans: tuple[tuple[int, int], ...]
    #: One row per clause.
    clauses: FloatArray
    #: The aspect (index into the reader's aspects) each clause speaks of, or -1.
    aspects: tuple[int, ...]
    #: Per clause, the share of its tokens the encoder does not know (0 where it cannot tell).
    unread: FloatArray


@dataclass(frozen=True)
class Reading:
    """A review read: its vector, its polarity in [-1, 1], and what it says of each aspect."""

    text: str
    vector: FloatArray
    polarity: float
    opinions: tuple[Opinion, ...] = ()


class ReviewReader:
    """Reads reviews into a vector, a polarity and opinions; learns polarity from ratings.

    Parameters
    ----------
    encoder
        The deployment's encoder (a `SpanEncoder` for `clauses="pooled"`).
    aspects
        What opinions are about (default: `DEFAULT_ASPECTS`).
    sentiment
        The sentiment head; default: one whose prior is the encoder's own anchors.
    margin
        Of aspect detection (`AspectDetector`).
    contrast
        How much of the review's own vector is taken out of each clause's before the clause is
        read: what the clause says against the rest of its review, not the review's mood again.
    clauses
        ``"pooled"``: clause vectors from the review's own pass. ``"apart"``: each clause
        encoded again on its own (one more sequence per clause).

    Examples
    --------
    >>> from streamrec.model.text.encoder import TransformerEncoder
    >>> reader = ReviewReader(TransformerEncoder(device="cpu"))
    >>> (reading,) = reader.read(["Great price for the quality. Shipping took a month."])
    >>> [(o.aspect, o.text) for o in reading.opinions]
    [('value', 'Great price for the quality'), ('service', 'Shipping took a month')]
    >>> reading.polarity > 0, reading.opinions[1].polarity < 0
    (True, True)
    """

    def __init__(
        self,
        encoder: TextEncoder,
        aspects: Sequence[Aspect] = DEFAULT_ASPECTS,
        sentiment: SentimentHead | None = None,
        margin: float = 0.15,
        contrast: float = 0.5,
        clauses: Literal["pooled", "apart"] = "pooled",
    ) -> None:
        if clauses not in ("pooled", "apart"):
            raise StreamrecError(f"clauses must be 'pooled' or 'apart', got {clauses!r}")
        if clauses == "pooled" and not isinstance(encoder, SpanEncoder):
            raise StreamrecError(
                f"clauses='pooled' needs an encoder with read(texts, spans), got {type(encoder).__name__}"
            )
        self.encoder = encoder
        self.clauses = clauses
        self.contrast = contrast
        self.detector = AspectDetector(encoder, aspects, margin)
        #: Reads every review until the next `commit`.
        self.sentiment = sentiment if sentiment is not None else SentimentHead.from_anchors(encoder)
        self._learning = copy.deepcopy(self.sentiment)
        #: Encoder sequences run, and reviews encoded (the cost of reading).
        self.n_sequences = 0
        self.n_reviews = 0

    @property
    def aspects(self) -> tuple[Aspect, ...]:
        return self.detector.aspects

    # -- the three steps ------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[Passage]:
        """One encoder pass per review (or one per review and clause, `clauses="apart"`)."""
        said = [readable(t) for t in texts]
        spans = [segments(t) for t in said]
        n = sum(len(s) for s in spans)
        pieces = [t[a:b] for t, cut in zip(said, spans, strict=True) for a, b in cut]
        if self.clauses == "pooled":
            vectors, pooled = self.encoder.read(said, spans)  # type: ignore[attr-defined]
            self.n_sequences += len(said)
        else:
            both = np.asarray(self.encoder.encode([*said, *pieces]), dtype=np.float32)
            vectors, pooled = both[: len(said)], both[len(said) :]
            self.n_sequences += len(said) + n
        self.n_reviews += len(said)
        if self.contrast and n:
            owner = np.repeat(np.arange(len(said)), [len(cut) for cut in spans])
            pooled = pooled - np.float32(self.contrast) * vectors[owner]
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        found = self.detector.detect(pieces, pooled)
        unknown = getattr(self.encoder, "unknown_share", None)
        unread = np.asarray(unknown(pieces), dtype=np.float32) if unknown else np.zeros(n, np.float32)
        out = []
        first = 0
        for text, cut, vector in zip(said, spans, vectors, strict=True):
            last = first + len(cut)
            out.append(
                Passage(
                    text, vector, tuple(cut), pooled[first:last], tuple(found[first:last]), unread[first:last]
                )
            )
            first = last
        return out

    def polarities(self, passage: Passage, rating: float | None = None) -> tuple[float, FloatArray]:
        """The review's polarity and each clause's, as the committed head reads them.

        A clause's polarity is its own reading, as far as the encoder reads its words: the share
        of them it does not know (a script its vocabulary lacks) takes the review's side instead
        (its rating, when it has one).
        """
        rows = np.vstack([passage.vector[None, :], passage.clauses]) if len(passage.clauses) else None
        values = self.sentiment.polarity(rows if rows is not None else passage.vector)
        review = float(values[0])
        overall = review if rating is None else float(np.clip((float(rating) - 3.0) / 2.0, -1.0, 1.0))
        unread = passage.unread
        leaned: FloatArray = ((1.0 - unread) * values[1:] + unread * np.float32(overall)).astype(np.float32)
        return review, leaned

    def judge(self, passage: Passage, rating: float | None = None) -> Reading:
        """The review's polarity and its opinions, as the committed head reads them."""
        review, values = self.polarities(passage, rating)
        opinions = []
        for (a, b), aspect, value in zip(passage.spans, passage.aspects, values, strict=True):
            if aspect >= 0:
                start, end = quote(passage.text, a, b)
                name = self.detector.aspects[aspect].name
                opinions.append(Opinion(name, float(value), start, end, passage.text[start:end]))
        return Reading(passage.text, passage.vector, review, tuple(opinions))

    def learn(self, passage: Passage, rating: float | None) -> bool:
        """Teach the head a review's rating (read from the next `commit` on); False if it says neither."""
        return self._learning.learn(passage.vector, rating, passage.clauses)

    def commit(self) -> None:
        """What was learned reads every review from now on."""
        self.sentiment = copy.deepcopy(self._learning)

    def read(self, texts: Sequence[str], ratings: Sequence[float | None] | None = None) -> list[Reading]:
        """Read `texts` in order, each before its rating is learned; learning each after it.

        What is learned reads only after `commit` (a worker commits at its checkpoint).
        """
        passages = self.encode(texts)
        rated = list(ratings) if ratings is not None else [None] * len(passages)
        readings = [self.judge(p, r) for p, r in zip(passages, rated, strict=True)]
        for passage, rating in zip(passages, rated, strict=True):
            self.learn(passage, rating)
        return readings

    # -- state ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the head that reads and the one that learns."""
        return {"sentiment": self.sentiment, "learning": self._learning}

    def restore(self, state: dict[str, Any]) -> None:
        """Take a checkpoint's `state`; a head of another dimension (another encoder) is refused."""
        head: SentimentHead = state["sentiment"]
        if head.dim != self.sentiment.dim:
            raise StreamrecError(
                f"the checkpointed sentiment head must have {self.sentiment.dim} dimensions "
                f"(the encoder's), got {head.dim}"
            )
        self.sentiment = head
        self._learning = state.get("learning", copy.deepcopy(head))
