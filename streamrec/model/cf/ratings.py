"""The rating baseline under `OnlineCF`'s rating model: shrunk running means of rating deviations."""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["Deviations", "add_deviation", "shrunk"]

#: Per user (or item), `[sum of its ratings' deviations, their count]`.
Deviations = dict[Hashable, list[float]]


def shrunk(table: Deviations, key: Hashable, shrinkage: float) -> float:
    """The mean deviation of `key`, shrunk towards 0 by `shrinkage` pseudo-ratings at 0 (0 if unseen).

    >>> shrunk({"a": [3.0, 2.0]}, "a", 1.0), shrunk({}, "b", 1.0)
    (1.0, 0.0)
    """
    entry = table.get(key)
    return entry[0] / (entry[1] + shrinkage) if entry is not None else 0.0


def add_deviation(table: Deviations, key: Hashable, deviation: float) -> None:
    """Count one more rating of `key`, `deviation` from the level below it."""
    entry = table.get(key)
    if entry is None:
        table[key] = [deviation, 1.0]
    else:
        entry[0] += deviation
        entry[1] += 1.0
