"""Why an item is recommended: at most `MAX_REASONS` reasons, strongest first, each from evidence."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from streamrec.model.text.opinions import stance
from streamrec.model.text.reputation import Reputation
from streamrec.model.text.wording import Wording
from streamrec.model.users.profile import UserProfile

__all__ = ["MAX_REASONS", "Reasons", "Scored"]

#: Reasons given per recommended item.
MAX_REASONS = 2


@dataclass(frozen=True)
class Scored:
    """One recommended item: its blended score and why it is recommended."""

    item_id: str
    score: float
    reasons: list[str]


class Reasons:
    """Words for why each listed item is there, from the signals that put it there.

    Parameters
    ----------
    wording
        The deployment's language.
    labels
        What each aspect is called in reasons (default: its name).
    title
        An item's title (None: unknown).
    reputation
        What reviewers say of items' aspects, for reasons that quote them (None: no such reasons).
    """

    def __init__(
        self,
        wording: Wording,
        labels: Mapping[str, str],
        title: Callable[[str], str | None],
        reputation: Reputation | None = None,
    ) -> None:
        self.wording = wording
        self.labels = dict(labels)
        self.title = title
        self.reputation = reputation

    def explain(
        self,
        item: str,
        score: float,
        contrib: Sequence[float],
        count: float,
        recent: list[tuple[str, float, str]],
        like_text: int,
        like_item: int,
        has_text: bool,
        profile: UserProfile | None = None,
        aspect: str | None = None,
        like_look: int = -1,
    ) -> Scored:
        """At most `MAX_REASONS` reasons, strongest first, no two of one kind, each from evidence.

        `contrib` holds the signals' contributions in the ranker's order (text, CF, popularity,
        item-to-item, near the latest items, away from dislikes, aspects, looks, closed-form
        item-to-item weights); `like_*` index
        the recent item a listed item is most like (-1: none)."""
        # The closed-form item-to-item weights (after these eight) name no item of the user's that
        # they come from: they give no reason of their own.
        text_c, cf_c, pop_c, item_c, near_c, away_c, aspect_c, look_c = contrib[:8]
        text_c += near_c
        # (strength, kind, phrase, the recent item it names or -1); worded only if chosen.
        candidates: list[tuple[float, str, str, int]] = []
        grounded = self.grounded(item, aspect, profile) if aspect_c > 0 else None
        if grounded is not None:
            # The user's own words, and the reviewers': the reason a person recognizes first.
            candidates.append((aspect_c + abs(text_c) + 1e3, "aspect", "", -1))
        if text_c > 0 and has_text:
            candidates.append((text_c, "text", "similar" if like_text >= 0 else "wrote", like_text))
        if look_c > 0 and like_look >= 0:
            candidates.append((look_c, "looks", "looks", like_look))
        if cf_c > 0:
            candidates.append((cf_c, "cf", "cf", -1))
        if pop_c > 0:
            candidates.append((pop_c, "pop", "trending", -1))
        if item_c > 0 and like_item >= 0:
            candidates.append((item_c, "item", "after", like_item))
        if count == 0:
            candidates.append((0.0, "new", "new", -1))
        candidates.sort(key=lambda r: -r[0])
        reasons: list[str] = []
        kinds: set[str] = set()
        for _, kind, phrase, at in candidates:
            if kind in kinds:
                continue
            line = grounded if grounded is not None and kind == "aspect" else self._line(phrase, recent, at)
            if line not in reasons:
                reasons.append(line)
                kinds.add(kind)
            if len(reasons) == MAX_REASONS:
                break
        if not reasons:
            reasons.append(self.wording.say("fallback"))
        return Scored(item, round(score, 6), reasons)

    def _line(self, phrase: str, recent: list[tuple[str, float, str]], at: int) -> str:
        """`phrase` worded, naming the user's recent item `at` (-1: none)."""
        if at < 0:
            return self.wording.say(phrase)
        about, _, action = recent[at]
        title = self.title(about) or about
        if phrase == "after":
            return self.wording.say(phrase, title=title)
        return self.wording.say(phrase, title=title, verb=self.wording.verb(action))

    def grounded(self, item: str, aspect: str | None, profile: UserProfile | None) -> str | None:
        """A reason quoting the user on `aspect` and what reviewers say of `item` on it."""
        if aspect is None or profile is None or self.reputation is None:
            return None
        mine = profile.evidence.get(aspect)
        if not mine:
            return None
        snippet, polarity, about = mine[0]
        label = self.labels.get(aspect, aspect)
        title = self.title(about) or about
        n, praising = self.reputation.counts(item, aspect)
        # A polarity is stated only where the reading is sure enough (`stance`); else the reason
        # says what the user and the reviewers wrote about, not how they judged it.
        side = stance(polarity)
        if n == 0 or (praising == 0 and side < 0):
            return None
        if praising == 0:
            key, count = "noted", n
        else:
            key, count = ("criticized" if side < 0 else "praised" if side > 0 else "wrote_about"), praising
        if side >= 0 and count == 1:
            key += "_one"
        line = self.wording.say(key, aspect=label, title=title, mine=snippet, n=count)
        theirs = self.reputation.quote(item, aspect, 1)
        if theirs is not None and theirs != snippet:
            line += self.wording.say("theirs", theirs=theirs)
        return line
