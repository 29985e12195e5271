"""What a user's takes say about the lists they are shown.

A user who passes over an item on their list may not want it, or may not have looked: many takes
come from search, other pages, another device. How much passing over says depends on how much the
user takes from what they are shown, so that is learned per user, from their own takes:
*attention*, the share of their takes (after an impression) that were among the items shown to
them since their previous take, shrunk towards the share over all users (itself shrunk towards one
in four), with the weight of four takes.

A model of exposure then gives the step: a user who looks (with probability `attention`) and wants
a shown item takes it with probability `q`; after `n` impressions without a take, the odds that they
want it are multiplied by `(1 - a) + a * (1 - q) ** n`. That factor falls with each impression and
levels off at `1 - a`: an item is never buried by being shown, and a user who never takes from
their lists loses nothing of theirs to them.
"""

from __future__ import annotations

import numpy as np

from streamrec.model.base import DoubleArray

#: Items shown and not taken kept per user (the latest shown).
MAX_SHOWN = 500
#: Prior of `attention`: one take from the list in `PRIOR_TAKES` takes.
PRIOR_FROM_LIST, PRIOR_TAKES = 1.0, 4.0
#: A user who looks at a list and wants an item on it takes it with this probability.
TAKE_IF_WANTED = 0.5


def attention(from_list: float, takes: float, prior: float = PRIOR_FROM_LIST / PRIOR_TAKES) -> float:
    """The share of a user's takes that come from what they were shown, shrunk towards `prior`.

    >>> attention(0, 0), round(attention(9, 10), 3), attention(0, 0, prior=0.1)
    (0.25, 0.714, 0.1)
    """
    return (from_list + prior * PRIOR_TAKES) / (takes + PRIOR_TAKES)


class Habits:
    """Takes after an impression, over all users: the prior of each user's `attention`.

    >>> habits = Habits()
    >>> for n in range(100): habits.took(from_list=n % 10 == 0)
    >>> round(habits.prior(), 3), round(habits.of(0, 0), 3), round(habits.of(5, 5), 3)
    (0.106, 0.106, 0.603)
    """

    def __init__(self) -> None:
        self.from_list = 0.0
        self.takes = 0.0

    def took(self, from_list: bool) -> None:
        """A user took something after an impression (`from_list`: one of the items shown)."""
        self.from_list += from_list
        self.takes += 1

    def untake(self, from_list: float, takes: float) -> None:
        """Take a user's counts back out (they asked to be forgotten)."""
        self.from_list = max(0.0, self.from_list - from_list)
        self.takes = max(0.0, self.takes - takes)

    def prior(self) -> float:
        return attention(self.from_list, self.takes)

    def of(self, from_list: float, takes: float) -> float:
        """A user's attention, from their takes after an impression."""
        return attention(from_list, takes, self.prior())


def passed_over(n: DoubleArray, attention: float, q: float = TAKE_IF_WANTED) -> DoubleArray:
    """How much `n` impressions without a take (per item) lower the log-odds that the user wants
    each item (nats, at least 0, at most `-ln(1 - attention)`).

    >>> passed_over(np.array([0.0, 1.0, 2.0, 50.0]), 0.5).round(3).tolist()
    [0.0, 0.288, 0.47, 0.693]
    """
    a = min(max(attention, 0.0), 0.999)
    return np.maximum(-np.log((1.0 - a) + a * (1.0 - q) ** np.maximum(n, 0.0)), 0.0)
