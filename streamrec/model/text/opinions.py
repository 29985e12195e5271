"""Opinions in reviews: which aspect each clause of a review speaks of, with the clause as evidence.

A review is cut into clauses at sentence ends and at contrasts ("works, but the strap
snapped" is two opinions), in any script. Each clause's vector (`reader.ReviewReader` pools
it from the review's own encoder pass) is compared with short descriptive phrases of each
aspect (value, quality, service...): a clause speaks of the aspect whose phrase it is closest
to, when that is clearly closer than it is to phrases that say nothing of any aspect; a clause
that holds one of an aspect's phrases word for word speaks of it whatever the encoder makes of
it (an English encoder reads Chinese as unknown tokens, every Chinese clause alike: a vector
that close to a phrase it does not hold is not taken as evidence). The phrases of the default
aspects are English and Chinese; a deployment adds its own aspects, in any language, from a
file.

Every snippet is a slice of the review's text as a person reads it (`readable`: HTML entities
such as ``&#34;`` decoded), so evidence is always the reviewer's words.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.model.base import FloatArray, TextEncoder
from streamrec.model.errors import StreamrecError

__all__ = [
    "DEFAULT_ASPECTS",
    "Aspect",
    "AspectDetector",
    "Opinion",
    "load_aspects",
    "quote",
    "stance",
    "readable",
    "segments",
]

# Sentence ends, clause separators, and the contrasts that start a second opinion.
_BOUNDARY = re.compile(
    r"[.!?;。！？；\n]+|[,，、]?\s*\b(?:but|however|although|though|except|yet)\b|[,，]?(?:但是|但|不过|可是)|，",
    re.IGNORECASE,
)
_WORDY = re.compile(r"\w", re.UNICODE)
#: What a clause neither starts nor ends with.
_TRIM = " \t,，:：-—\"'“”()"
#: Clauses longer than this are evidence too long to quote: the quote ends at the last space before it.
MAX_SNIPPET = 160
#: A clause this close to a phrase it does not hold is one the encoder cannot tell apart from it.
_INDISTINCT = 0.98
#: How sure a reading must be (|polarity|) for a reason or a profile to state it as praise or
#: criticism: the least at which 9 in 10 of the reader's stated polarities (its head from the
#: anchors, as before a shop's ratings teach it) agree with what people labelled in SemEval-2014's
#: restaurant sentences: 0.90 [0.86, 0.94] of the 8% that sure (`streamrec aspects`,
#: docs/opinions.md). A reading less sure is evidence of what the user wrote about, not of how
#: they judged it.
CLAIM_CONFIDENCE = 0.69


def stance(polarity: float) -> int:
    """What a reading may be stated as: 1 praise, -1 criticism, 0 neither (not sure enough).

    >>> [stance(p) for p in (0.9, 0.5, -0.5, -0.9)]
    [1, 0, 0, -1]
    """
    if polarity >= CLAIM_CONFIDENCE:
        return 1
    return -1 if polarity <= -CLAIM_CONFIDENCE else 0


def readable(text: str) -> str:
    """The text as a person reads it: HTML entities that reviews often carry, decoded.

    >>> readable("fairly &#34;bright&#34; &amp; warm")
    'fairly "bright" & warm'
    """
    return html.unescape(text) if "&" in text else text


def segments(text: str) -> list[tuple[int, int]]:
    """Character spans of a text's clauses: each `text[start:end]` is one opinion's evidence.

    Every clause of the text is kept, however many and however long.

    >>> text = "Great price for the quality. Works, but the strap snapped after a week!"
    >>> [text[a:b] for a, b in segments(text)]
    ['Great price for the quality', 'Works', 'the strap snapped after a week']
    >>> text = "性价比高，音质很好。但是包装很差"
    >>> [text[a:b] for a, b in segments(text)]
    ['性价比高', '音质很好', '包装很差']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in [*_BOUNDARY.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip(_TRIM))
        trail = len(piece.rstrip(_TRIM))
        a, b = start + lead, start + trail
        if len(_WORDY.findall(text[a:b])) >= 2:
            spans.append((a, b))
        if match is not None:
            start = match.end()
    return spans


def quote(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of a clause to quote: the clause, or its first `MAX_SNIPPET` characters up to a space.

    >>> quote("a " * 100, 0, 200)
    (0, 159)
    """
    if end - start <= MAX_SNIPPET:
        return start, end
    cut = text.rfind(" ", start, start + MAX_SNIPPET)
    return start, cut if cut > start else start + MAX_SNIPPET


@dataclass(frozen=True)
class Aspect:
    """Something reviewers praise or criticize, known by a few phrases that speak of it."""

    name: str
    phrases: tuple[str, ...]
    #: How reasons and profiles call it, by language; the name where a language has none.
    labels: Mapping[str, str] = field(default_factory=dict)

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.name


DEFAULT_ASPECTS = (
    Aspect(
        "value",
        ("good value for money", "great price", "worth the money", "cheap and good", "too expensive",
         "overpriced", "affordable price", "性价比高", "价格便宜", "太贵了"),
        {"en": "value for money", "zh": "性价比"},
    ),
    Aspect(
        "quality",
        ("high quality and well made", "sturdy and durable", "it broke after a week", "cheap flimsy plastic",
         "solid build quality", "fell apart quickly", "质量很好", "做工结实", "质量差", "用了一周就坏了"),
        {"en": "quality and durability", "zh": "质量"},
    ),
    Aspect(
        "service",
        ("fast shipping", "arrived quickly", "great customer service", "the delivery was late",
         "damaged in shipping", "the seller was helpful", "服务好", "物流很快", "快递太慢", "客服态度差"),
        {"en": "service and delivery", "zh": "服务和物流"},
    ),
    Aspect(
        "ease_of_use",
        ("easy to use", "easy to set up", "simple to install", "hard to use", "confusing instructions",
         "complicated to operate", "使用方便", "安装简单", "操作复杂"),
        {"en": "ease of use", "zh": "易用性"},
    ),
    Aspect(
        "appearance",
        ("looks beautiful", "nice color and design", "looks cheap", "ugly design", "stylish and elegant",
         "外观漂亮", "颜色好看", "样子难看"),
        {"en": "appearance", "zh": "外观"},
    ),
)  # fmt: skip

#: Phrases that speak of no aspect: a clause must be clearly closer to an aspect than to these.
_BACKGROUND = (
    "I bought this.", "This is the product.", "I have had it for a while.", "It is a thing.",
    "My son uses it.", "我买了这个。", "这是一个产品。",
)  # fmt: skip


def load_aspects(path: Path) -> tuple[Aspect, ...]:
    """Aspects from a JSON file: `[{"name": ..., "phrases": [...], "labels": {"en": ..., "zh": ...}}]`.

    Raises `StreamrecError` saying what is wrong with the file.
    """
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StreamrecError(f"aspects file {str(path)!r} must be readable JSON, got: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise StreamrecError(
            f"aspects file {str(path)!r} must hold a non-empty list, got {type(entries).__name__}"
        )
    out = []
    for n, entry in enumerate(entries):
        ok = isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"].strip()
        phrases = entry.get("phrases") if isinstance(entry, dict) else None
        if (
            not ok
            or not isinstance(phrases, list)
            or not phrases
            or not all(isinstance(p, str) for p in phrases)
        ):
            raise StreamrecError(
                f"aspects file {str(path)!r}, entry {n}: must be {{'name': str, 'phrases': [str, ...]}}, "
                f"got {str(entry)[:80]!r}"
            )
        labels = entry.get("labels") or {}
        out.append(Aspect(entry["name"].strip(), tuple(phrases), {str(k): str(v) for k, v in labels.items()}))
    return tuple(out)


@dataclass(frozen=True)
class Opinion:
    """What a review says of one aspect: the clause's polarity and its words (a slice of the review)."""

    aspect: str
    polarity: float
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "aspect": self.aspect,
            "polarity": round(float(self.polarity), 4),
            "start": self.start,
            "end": self.end,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Opinion:
        aspect, text = str(data["aspect"]), str(data["text"])
        return cls(aspect, float(data["polarity"]), int(data["start"]), int(data["end"]), text)


class AspectDetector:
    """Tells which aspect each clause speaks of, from its vector (and its words).

    Parameters
    ----------
    encoder
        Any `TextEncoder`: the aspects' phrases are encoded with it once, at construction.
    aspects
        What to look for (default: `DEFAULT_ASPECTS`).
    margin
        How much closer (cosine) a clause must be to an aspect's nearest phrase than to the
        nearest phrase of no aspect, to speak of it.

    Examples
    --------
    >>> from streamrec.model.text.encoder import TransformerEncoder
    >>> encoder = TransformerEncoder(device="cpu")
    >>> detector = AspectDetector(encoder)
    >>> clauses = ["Great price for the quality", "Shipping took a month", "I bought two"]
    >>> [detector.name(i) for i in detector.detect(clauses, encoder.encode(clauses))]
    ['value', 'service', None]
    """

    def __init__(
        self, encoder: TextEncoder, aspects: Sequence[Aspect] = DEFAULT_ASPECTS, margin: float = 0.2
    ) -> None:
        if not aspects:
            raise StreamrecError("aspects must name at least one aspect, got none")
        self.aspects = tuple(aspects)
        self.margin = margin
        phrases = [p for a in self.aspects for p in a.phrases]
        self._owner = np.array([i for i, a in enumerate(self.aspects) for _ in a.phrases])
        vectors = np.asarray(encoder.encode([*phrases, *_BACKGROUND]), dtype=np.float32)
        self._phrases = vectors[: len(phrases)]
        self._background = vectors[len(phrases) :]
        self._lower = [tuple(p.lower() for p in a.phrases) for a in self.aspects]

    def names(self) -> list[str]:
        return [a.name for a in self.aspects]

    def name(self, index: int) -> str | None:
        """The name of the aspect `detect` found (None for -1)."""
        return self.aspects[index].name if index >= 0 else None

    def aspect(self, name: str) -> Aspect | None:
        return next((a for a in self.aspects if a.name == name), None)

    def detect(self, clauses: Sequence[str], vectors: FloatArray) -> list[int]:
        """The aspect (index) each clause speaks of, or -1."""
        if len(vectors) == 0:
            return []
        vectors = np.asarray(vectors, dtype=np.float32)
        best = self.closeness(vectors)
        background = (vectors @ self._background.T).max(axis=1)
        top = best.argmax(axis=1)
        score = best[np.arange(len(vectors)), top]
        out = []
        for clause, t, s, b in zip(clauses, top, score, background, strict=True):
            said = self._said(clause)
            if said >= 0:
                out.append(said)
            elif s - b >= self.margin and s < _INDISTINCT:
                out.append(int(t))
            else:
                out.append(-1)
        return out

    def closeness(self, vectors: FloatArray) -> FloatArray:
        """Per row of `vectors` and aspect, the cosine to the aspect's nearest phrase."""
        sims = np.asarray(vectors, dtype=np.float32) @ self._phrases.T
        best = np.full((len(sims), len(self.aspects)), -1.0, dtype=np.float32)
        for i in range(len(self.aspects)):
            best[:, i] = sims[:, self._owner == i].max(axis=1)
        return best

    def _said(self, clause: str) -> int:
        """The aspect one of whose phrases the clause holds word for word, or -1."""
        lower = clause.lower()
        for i, phrases in enumerate(self._lower):
            if any(phrase in lower for phrase in phrases):
                return i
        return -1
