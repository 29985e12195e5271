"""User profiles: recent history, items to exclude, what they like and dislike, what they write about."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import orjson

from streamrec.model.base import FloatArray
from streamrec.model.errors import StreamrecError
from streamrec.model.text.opinions import Opinion, stance
from streamrec.model.users import exposure

__all__ = ["ACTION_WEIGHTS", "NEGATIVE_ACTIONS", "PROFILE_FORMAT", "ProfileFormatError", "UserProfile",
           "rating_weight"]  # fmt: skip


#: How much each kind of interaction counts: its pull on the user's text vector, and its weight
#: in popularity.
ACTION_WEIGHTS: Mapping[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "cart": 2.0,
    "purchase": 3.0,
    "review": 2.0,
    "dislike": 2.0,
    "skip": 0.5,
}

#: Interaction kinds that say the user did not want the item.
NEGATIVE_ACTIONS = frozenset({"dislike", "skip"})
MAX_SHOWN = exposure.MAX_SHOWN
#: Snippets of their own reviews kept per aspect, per user.
EVIDENCE_PER_ASPECT = 2
#: The stored form's version: 1 had no version field; 2 holds every field.
PROFILE_FORMAT = 2
#: Stored key of each field (short: a profile is stored once per user, and sent on every change).
_KEYS = {
    "user_id": "u", "history": "h", "seen": "s", "text_sum": "v", "text_weight": "w", "text_ts": "t",
    "n_events": "n", "offsets": "o", "dislike_sum": "d", "dislike_weight": "dw", "dislike_ts": "dt",
    "aspects": "a", "evidence": "e", "verdicts": "j", "half_life_s": "hl", "max_history": "mh",
    "max_seen": "ms", "text_version": "tv", "shown": "sh", "fresh": "fr", "list_takes": "lt",
}  # fmt: skip
_VECTORS = ("text_sum", "dislike_sum")


class ProfileFormatError(StreamrecError):
    """A stored profile written in a format this version of streamrec cannot read."""


def rating_weight(rating: float | None) -> float:
    """Scale a review's pull by its rating: a 1-star review barely moves the profile.

    >>> rating_weight(None), rating_weight(5), rating_weight(1)
    (1.0, 1.0, 0.1)
    """
    if rating is None:
        return 1.0
    return max(0.1, (float(rating) - 1.0) / 4.0)


@dataclass
class UserProfile:
    """What the recommender knows of one user.

    The text vector is a time-decayed weighted mean: at each update the running sum
    and weight decay by `2 ** (-dt / half_life_s)` (event time) before the new vector
    is added, so recent reviews and interactions dominate. What the user disliked (a
    negative review, a `dislike` or `skip`) goes to a second mean decayed the same way,
    and never pulls the first. Per aspect, the profile counts how often the user wrote of
    it, praising or criticizing, and keeps their strongest words on it as evidence.

    Examples
    --------
    >>> p = UserProfile("ann")
    >>> p.observe("guitar", ts=0.0, action="click", vector=np.array([1, 0], dtype=np.float32))
    >>> p.observe("drum", ts=3600.0, action="review", vector=np.array([0, 1], dtype=np.float32))
    >>> [round(float(x), 2) for x in p.text_vector()], sorted(p.seen)
    ([0.45, 0.89], ['drum', 'guitar'])
    >>> UserProfile.from_bytes(p.to_bytes()) == p
    True
    """

    user_id: str
    history: list[tuple[str, float, str]] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    text_sum: FloatArray | None = None
    text_weight: float = 0.0
    text_ts: float = 0.0
    n_events: int = 0
    #: Last applied offset per input "topic:partition", so a replayed event is applied once.
    offsets: dict[str, int] = field(default_factory=dict)
    dislike_sum: FloatArray | None = None
    dislike_weight: float = 0.0
    dislike_ts: float = 0.0
    #: Per aspect: `[mentions, praised, criticized]`.
    aspects: dict[str, list[int]] = field(default_factory=dict)
    #: Per aspect: `[[snippet, polarity, item_id], ...]`, strongest first.
    evidence: dict[str, list[list[Any]]] = field(default_factory=dict)
    #: Reviews' sentiment: `[n, sum of polarities, negatives]` (how demanding the user is).
    verdicts: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    half_life_s: float = 30 * 86_400.0
    max_history: int = 50
    max_seen: int | None = 2_000
    #: The encoder whose space `text_sum` and `dislike_sum` are in ("": none named).
    text_version: str = ""
    #: Items shown to the user and not taken since: how many times (impressions), oldest first.
    shown: dict[str, int] = field(default_factory=dict)
    #: Items shown since the user's last take (what that take could have come from).
    fresh: list[str] = field(default_factory=list)
    #: Takes after an impression: `[from what was shown since the take before, all]`.
    list_takes: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def observe(
        self,
        item_id: str,
        ts: float,
        action: str,
        vector: FloatArray | None = None,
        weight: float = 1.0,
    ) -> bool | None:
        """Record an interaction, pulling the text vector towards `vector` if given; whether it
        was taken from what the user was shown (`take`)."""
        from_list = self.take(item_id, action)
        self._record(item_id, ts, action)
        if vector is not None:
            self.add_vector(vector, ts, ACTION_WEIGHTS.get(action, 1.0) * weight)
        return from_list

    def show(self, items: Sequence[str]) -> None:
        """Items were shown to the user (an impression): each counts once more as passed over,
        until the user takes it.

        >>> p = UserProfile("ann")
        >>> p.show(["a", "b"]); p.show(["b"]); p.observe("a", ts=0.0, action="click"), p.shown
        (True, {'b': 2})
        """
        for item in dict.fromkeys(items):
            self.shown[item] = self.shown.pop(item, 0) + 1
        if len(self.shown) > MAX_SHOWN:
            for old in list(self.shown)[: len(self.shown) - MAX_SHOWN]:
                del self.shown[old]
        self.fresh = list(dict.fromkeys([*self.fresh, *items]))[-MAX_SHOWN:]

    def take(self, item_id: str, action: str) -> bool | None:
        """Count a take after an impression in `list_takes`: whether the item was among those shown
        since the take before (None: no impression since, or not a take).

        >>> p = UserProfile("ann")
        >>> p.show(["a", "b"]); p.take("a", "click"), p.take("b", "click"), p.list_takes
        (True, None, [1.0, 1.0])
        """
        if not self.fresh or action in NEGATIVE_ACTIONS:
            return None
        shown = item_id in self.fresh
        self.list_takes[0] += shown
        self.list_takes[1] += 1
        self.fresh = []
        return shown

    def _record(self, item_id: str, ts: float, action: str) -> None:
        """The interaction in the history, and the item among those to exclude."""
        self.shown.pop(item_id, None)  # taken (or refused): no longer merely passed over
        self.n_events += 1
        self.history.append((item_id, ts, action))
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]
        self.seen.pop(item_id, None)
        self.seen[item_id] = ts  # dicts keep insertion order: oldest first
        if self.max_seen is not None and len(self.seen) > self.max_seen:
            for old in list(self.seen)[: len(self.seen) - self.max_seen]:
                del self.seen[old]

    def dislike(
        self, item_id: str, ts: float, action: str, vector: FloatArray | None, weight: float = 1.0
    ) -> None:
        """Record an interaction the user did not want: excluded from now on, and pushed away."""
        self._record(item_id, ts, action)
        if vector is not None:
            self._add_dislike(vector, ts, weight)

    def _add_dislike(self, vector: FloatArray, ts: float, weight: float) -> None:
        vector = np.asarray(vector, dtype=np.float32) * np.float32(weight)
        if self.dislike_sum is None:
            self.dislike_sum, self.dislike_weight = vector, weight
        else:
            decay = 2.0 ** (-max(0.0, ts - self.dislike_ts) / self.half_life_s)
            self.dislike_sum = self.dislike_sum * np.float32(decay) + vector
            self.dislike_weight = self.dislike_weight * decay + weight
        self.dislike_ts = max(self.dislike_ts, ts)

    def rebase(self, version: str, vector_of: Callable[[str], FloatArray | None]) -> None:
        """Move the text vectors into another encoder's space: recomputed from the history, each
        interaction pulled by its item's vector there (`vector_of`).

        What the user's own reviews said stands in as their items' vectors; interactions older than
        the history are gone from the new vectors.

        >>> p = UserProfile("ann")
        >>> p.observe("guitar", ts=0.0, action="click", vector=np.array([1, 0], dtype=np.float32))
        >>> p.rebase("v2", {"guitar": np.array([0, 0, 1], dtype=np.float32)}.get)
        >>> p.text_vector().tolist(), p.text_version
        ([0.0, 0.0, 1.0], 'v2')
        """
        self.text_sum, self.text_weight, self.text_ts = None, 0.0, 0.0
        self.dislike_sum, self.dislike_weight, self.dislike_ts = None, 0.0, 0.0
        for item, ts, action in self.history:
            vector = vector_of(item)
            if vector is None:
                continue
            if action in NEGATIVE_ACTIONS:
                self._add_dislike(vector, ts, 1.0)
            else:
                self.add_vector(vector, ts, ACTION_WEIGHTS.get(action, 1.0))
        self.text_version = version

    def retract(self, item_id: str, vector: FloatArray | None) -> None:
        """Take back the pull of the user's earlier likes of `item_id` (a purchase they then panned)."""
        if vector is None or self.text_sum is None:
            return
        vector = np.asarray(vector, dtype=np.float32)
        for item, ts, action in self.history:
            if item == item_id and action not in NEGATIVE_ACTIONS and action != "dislike":
                weight = ACTION_WEIGHTS.get(action, 1.0) * 2.0 ** (
                    -max(0.0, self.text_ts - ts) / self.half_life_s
                )
                self.text_sum = self.text_sum - vector * np.float32(weight)
                self.text_weight = max(0.0, self.text_weight - weight)

    def dislike_vector(self) -> FloatArray | None:
        """Unit-length mean of what the user disliked, or None."""
        if self.dislike_sum is None or self.dislike_weight <= 0:
            return None
        norm = float(np.linalg.norm(self.dislike_sum))
        return None if norm == 0.0 else (self.dislike_sum / norm).astype(np.float32)

    def note(self, polarity: float, opinions: Sequence[Opinion], item_id: str) -> None:
        """Tally a review: its polarity, and each opinion it holds."""
        self.verdicts[0] += 1
        self.verdicts[1] += polarity
        self.verdicts[2] += polarity < 0
        for opinion in opinions:
            value = float(opinion.polarity)
            tally = self.aspects.setdefault(opinion.aspect, [0, 0, 0])
            tally[0] += 1
            tally[1] += stance(value) > 0
            tally[2] += stance(value) < 0
            kept = self.evidence.setdefault(opinion.aspect, [])
            kept.append([opinion.text, round(value, 3), item_id])
            kept.sort(key=lambda e: -abs(e[1]))
            del kept[EVIDENCE_PER_ASPECT:]

    def cares(self) -> dict[str, float]:
        """How much the user cares about each aspect: their share of the user's mentions."""
        total = sum(t[0] for t in self.aspects.values())
        return {a: t[0] / total for a, t in self.aspects.items()} if total else {}

    def applied(self, source: tuple[str, int] | None) -> bool:
        """True if the event at `source` ("topic:partition", offset) is already in this profile."""
        return source is not None and self.offsets.get(source[0], -1) >= source[1]

    def add_vector(self, vector: FloatArray, ts: float, weight: float) -> None:
        vector = np.asarray(vector, dtype=np.float32)
        if self.text_sum is None:
            self.text_sum = vector * weight
            self.text_weight = weight
        else:
            decay = 2.0 ** (-max(0.0, ts - self.text_ts) / self.half_life_s)
            self.text_sum = self.text_sum * np.float32(decay) + vector * np.float32(weight)
            self.text_weight = self.text_weight * decay + weight
        self.text_ts = max(self.text_ts, ts)

    def text_vector(self) -> FloatArray | None:
        """Unit-length profile vector, or None before any text is known."""
        if self.text_sum is None or self.text_weight <= 0:
            return None
        norm = float(np.linalg.norm(self.text_sum))
        if norm == 0.0:
            return None
        return (self.text_sum / norm).astype(np.float32)

    def recent_items(self, n: int | None = None) -> list[tuple[str, float, str]]:
        """Most recent interactions first, one entry per item; what the user did not want is left out
        (it says nothing of what they are shopping for)."""
        out, taken = [], set()
        for entry in reversed(self.history):
            if entry[0] not in taken:
                taken.add(entry[0])
                if entry[2] in NEGATIVE_ACTIONS:
                    continue
                out.append(entry)
                if n is not None and len(out) == n:
                    break
        return out

    def to_bytes(self) -> bytes:
        """Compact JSON of every field, with the format's version; vectors as base64 float32."""
        data: dict[str, Any] = {"f": PROFILE_FORMAT}
        for name, key in _KEYS.items():
            value = getattr(self, name)
            if name in _VECTORS and value is not None:
                value = base64.b64encode(np.asarray(value, "<f4").tobytes()).decode()
            data[key] = value
        raw = orjson.dumps(data)
        # orjson's result keeps its whole working buffer allocated (tens of KiB for a few);
        # a profile lives in the table as long as its user does: keep an exact-size copy.
        return bytes(memoryview(raw))

    @classmethod
    def from_bytes(cls, raw: bytes, **params: float | int | None) -> UserProfile:
        """A stored profile; `params` (the deployment's settings) override the stored ones.

        Raises `ProfileFormatError` for a format newer than this version of streamrec reads.
        """
        data = orjson.loads(raw)
        version = data.get("f", 1)
        if not isinstance(version, int) or version > PROFILE_FORMAT:
            raise ProfileFormatError(
                f"profile of user {data.get('u')!r} is stored in format {version!r}, newer than the "
                f"{PROFILE_FORMAT} this streamrec reads: run the version that wrote it, or a newer one"
            )
        values: dict[str, Any] = {}
        for name, key in _KEYS.items():
            if key not in data:
                continue  # format 1 kept no settings, nor (at first) dislikes and aspects
            value = data[key]
            if name in _VECTORS and value is not None:
                value = np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)
            values[name] = value
        values["history"] = [(str(h[0]), float(h[1]), str(h[2])) for h in values["history"]]
        values.update(params)
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserProfile):
            return NotImplemented
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in _VECTORS:
                if (mine is None) != (theirs is None) or (
                    mine is not None and not np.array_equal(mine, theirs)
                ):
                    return False
            elif mine != theirs:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]
