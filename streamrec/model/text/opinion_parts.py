"""What reading reviews as opinions changes, part by part: each part is switched on or off alone.

A review read as an opinion (by its rating, or, without a decisive one, by the polarity its
text reads) is used in three places that can be switched. The evaluation scores the hybrid
with each part flipped, one at a time, so each part's effect on what users went on to like
and to pan is measured apart. Whatever parts are on, a review that reads negative is never a
like: it pulls no profile towards its item and counts toward neither popularity nor
co-occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DEFAULT_PARTS", "PARTS", "parts_of"]

#: Every part, and what it does.
PARTS: dict[str, str] = {
    "cf_negatives": "CF learns a review of 1-2 stars as a negative (the user did not want the item), "
    "not as a take",
    "dislikes": "a review that reads negative is a dislike: the user's profile moves away from the item, "
    "and the ranker pushes down what resembles it",
    "aspects": "what reviews say of aspects builds item reputations and user tallies: the aspect-match "
    "signal, readable profiles and the reasons that quote reviewers",
}

#: Names of parts that are no longer switched (always on now): accepted, and change nothing.
RETIRED = frozenset({"pan_filter"})

#: The parts on by default: all three. With the blend learned from what users take, the dislike
#: push costs no liked HR beyond its interval (docs/evaluation.md, the targets: opinions), and
#: without it a user who pans an item is shown as many items like it as a user who said nothing.
DEFAULT_PARTS: tuple[str, ...] = ("cf_negatives", "dislikes", "aspects")


def parts_of(value: bool | Iterable[str]) -> frozenset[str]:
    """The parts named by `value`: True for the default ones, False for none, or their names.

    >>> sorted(parts_of(["aspects", "dislikes"])), parts_of(False)
    (['aspects', 'dislikes'], frozenset())
    >>> parts_of(["likes"])
    Traceback (most recent call last):
    ...
    ValueError: opinion parts must be among cf_negatives, dislikes, aspects, got ['likes']
    """
    if value is True:
        return frozenset(DEFAULT_PARTS)
    if value is False:
        return frozenset()
    names = [n for n in value if n not in RETIRED]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"opinion parts must be among {', '.join(PARTS)}, got {unknown!r}")
    return frozenset(names)
