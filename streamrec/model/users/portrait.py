"""A user's profile in words and numbers: what they care about, like and dislike, in their own words."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from streamrec.model.events.schemas import AspectView, Evidence, ItemView, ReadableProfile
from streamrec.model.text.opinions import stance
from streamrec.model.text.wording import Wording
from streamrec.model.users.profile import NEGATIVE_ACTIONS, UserProfile

__all__ = ["portrait"]

#: Items listed as liked and as disliked.
MAX_ITEMS = 5


def portrait(
    profile: UserProfile,
    title_of: Callable[[str], str | None],
    labels: Mapping[str, str] | None = None,
    wording: Wording | None = None,
    now: float | None = None,
) -> ReadableProfile:
    """The readable profile of `profile`: every quote is a slice of one of the user's reviews.

    >>> from streamrec.model.text.opinions import Opinion
    >>> p = UserProfile("ann")
    >>> p.note(0.8, [Opinion("value", 0.9, 0, 27, "great price for the quality")], "mic")
    >>> view = portrait(p, lambda item: "Studio mic", {"value": "value for money"}, now=0.0)
    >>> view.summary, view.cares_about[0].evidence[0].text
    ('Cares most about value for money.', 'great price for the quality')
    """
    labels = labels or {}
    wording = wording or Wording()
    cares = profile.cares()
    aspects = []
    for aspect, weight in sorted(cares.items(), key=lambda kv: -kv[1]):
        mentions, praised, criticized = profile.aspects[aspect]
        evidence = [Evidence(text=s, polarity=v, item_id=i) for s, v, i in profile.evidence.get(aspect, [])]
        label = labels.get(aspect, aspect)
        view = AspectView(
            aspect=aspect,
            label=label,
            mentions=mentions,
            praised=praised,
            criticized=criticized,
            weight=round(weight, 3),
            evidence=evidence,
        )
        aspects.append(view)
    quotes: dict[str, list[Evidence]] = {}
    for entries in profile.evidence.values():
        for snippet, value, item in entries:
            quotes.setdefault(item, []).append(Evidence(text=snippet, polarity=value, item_id=item))
    liked: list[ItemView] = []
    disliked: list[ItemView] = []
    listed: set[str] = set()
    for item, _, action in reversed(profile.history):
        if item in listed:
            continue
        listed.add(item)
        bad = action in NEGATIVE_ACTIONS
        target = disliked if bad else liked
        if len(target) < MAX_ITEMS:
            # Only a reading sure enough to be stated is quoted as why the user liked or disliked it.
            kept = [q for q in quotes.get(item, []) if stance(q.polarity) == (-1 if bad else 1)]
            target.append(ItemView(item_id=item, title=title_of(item), evidence=kept))
    n, total, negatives = profile.verdicts
    mean = total / n if n else None
    demanding = "balanced"
    if n >= 3:
        share = negatives / n
        demanding = (
            "demanding" if share >= 0.3 else "easy" if share == 0 and (mean or 0) > 0.5 else "balanced"
        )
    top = [a.label for a in aspects[:3]]
    summary = wording.say("summary_cares", aspects=", ".join(top)) if top else wording.say("summary_none")
    return ReadableProfile(
        user_id=profile.user_id,
        language=wording.language,
        summary=summary,
        cares_about=aspects,
        liked=liked,
        disliked=disliked,
        reviews=int(n),
        mean_polarity=None if mean is None else round(mean, 3),
        demanding=wording.say(demanding),
        updated_at=time.time() if now is None else now,
    )
