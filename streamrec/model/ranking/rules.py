"""A deployment's rules: what every list obeys, published or asked for (exclude, require, boost,
bury, pin)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamrec.model.errors import StreamrecError
from streamrec.model.ranking.reasons import Scored

__all__ = ["Boost", "Pin", "Rules", "RulesError", "load_rules", "place_pins"]

_Names = list[Annotated[str, Field(min_length=1)]]


class RulesError(StreamrecError):
    """A rules file that cannot be read or says something impossible; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Boost(_Strict):
    """Moves items (by id or by tag) up (`by` > 0) or down (`by` < 0, a bury) in every list.

    `by` is added to an item's relevance, a sum of signals each scaled to unit spread over the
    candidates: 1 is about one standard deviation of one signal."""

    items: _Names = Field(default_factory=list)
    tags: _Names = Field(default_factory=list)
    by: Annotated[float, Field(ge=-10, le=10)]

    @model_validator(mode="after")
    def _names_something(self) -> Boost:
        if not self.items and not self.tags:
            raise ValueError("give items or tags to move")
        return self


class Pin(_Strict):
    """Puts an item at a position (1 is the top) of every list it may appear in."""

    item: Annotated[str, Field(min_length=1)]
    position: Annotated[int, Field(ge=1, le=100)] = 1


class Rules(_Strict):
    """What every list obeys.

    An item is listed only if it has none of `exclude_tags`, is not in `exclude_items`, and, when
    `require_tags` is given, has one of them. Boosts and buries move the items they name; pinned
    items take their positions, in lists they are allowed in, unless the user has taken them.

    Examples
    --------
    >>> rules = Rules(exclude_tags=["adult"], boost=[Boost(tags=["house"], by=0.5)], bury=[])
    >>> rules.allows("x", {"adult", "books"}), rules.allows("y", {"books"}), rules.shift("y", {"house"})
    (False, True, 0.5)
    """

    exclude_tags: _Names = Field(default_factory=list)
    require_tags: _Names = Field(default_factory=list)
    exclude_items: _Names = Field(default_factory=list)
    boost: list[Boost] = Field(default_factory=list)
    bury: list[Boost] = Field(default_factory=list)
    pin: list[Pin] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Rules:
        for n, rule in enumerate(self.bury):
            if rule.by < 0:
                raise ValueError(f"bury[{n}].by: how far down, as a positive number; got {rule.by}")
        positions = [p.position for p in self.pin]
        if len(set(positions)) != len(positions):
            raise ValueError(f"pin: two items at one position ({sorted(positions)})")
        clash = {p.item for p in self.pin} & set(self.exclude_items)
        if clash:
            raise ValueError(f"pin: items both pinned and excluded: {sorted(clash)}")
        return self

    @property
    def empty(self) -> bool:
        """True when no rule is given (every list is as the ranker made it)."""
        return not (self.exclude_tags or self.require_tags or self.exclude_items or self.boost
                    or self.bury or self.pin)  # fmt: skip

    def allows(self, item: str, tags: Iterable[str], require: Iterable[str] = ()) -> bool:
        """May `item`, tagged `tags`, be listed (`require`: a request's own tags, any of which)?"""
        tags = set(tags)
        if item in self.exclude_items or not tags.isdisjoint(self.exclude_tags):
            return False
        if self.require_tags and tags.isdisjoint(self.require_tags):
            return False
        required = set(require)
        return not required or not tags.isdisjoint(required)

    def shift(self, item: str, tags: Iterable[str]) -> float:
        """What boosts and buries add to an item's relevance."""
        tags = set(tags)
        up = sum(r.by for r in self.boost if item in r.items or not tags.isdisjoint(r.tags))
        down = sum(r.by for r in self.bury if item in r.items or not tags.isdisjoint(r.tags))
        return up - down


def load_rules(path: Path) -> Rules:
    """Rules from a TOML or JSON file (by its suffix; TOML otherwise).

    Raises `RulesError` naming the file, the entry and what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"rules file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise RulesError(f"rules file {str(path)!r} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"rules file {str(path)!r} must hold a table of rules, got {type(data).__name__}")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            problems.append(f"{where or 'top level'}: {error['msg'].removeprefix('Value error, ')}")
        raise RulesError(f"rules file {str(path)!r}: " + "; ".join(problems)) from None


def place_pins(ranked: list[Scored], pins: Sequence[Pin], k: int, reason: str) -> list[Scored]:
    """`ranked` with each pinned item at its position (1: the top), cut to `k`: the pinned items
    are taken out first, then put in top down, so that none moves another.

    >>> ranked = [Scored(i, 1.0, []) for i in "abcd"]
    >>> [s.item_id for s in place_pins(ranked, [Pin(item="d", position=1), Pin(item="a", position=3)], 4, "")]
    ['d', 'b', 'a', 'c']
    """
    pinned = {pin.item for pin in pins}
    out = [s for s in ranked if s.item_id not in pinned]
    for pin in sorted(pins, key=lambda p: p.position):
        at = min(pin.position - 1, len(out))
        score = out[at].score if at < len(out) else (out[-1].score if out else 0.0)
        out.insert(at, Scored(pin.item, score, [reason]))
    return out[:k]
