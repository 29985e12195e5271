"""How reasons and profiles are worded, in the deployment's language (English and Chinese)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LANGUAGES", "Wording"]

_EN = {
    "viewed": "viewed",
    "clicked": "clicked",
    "cart": "added to your cart",
    "purchase": "bought",
    "review": "reviewed",
    "dislike": "disliked",
    "skip": "skipped",
    "other": "interacted with",
    "similar": "similar to {title!r} you {verb}",
    "wrote": "matches what you wrote in your reviews",
    "cf": "popular with users like you",
    "trending": "trending now",
    "after": "often taken after {title!r}",
    "new": "new arrival",
    "fallback": "popular",
    "praised": "you praised the {aspect} of {title!r} (“{mine}”); {n} reviewers praise this one's {aspect}",
    "praised_one": "you praised the {aspect} of {title!r} (“{mine}”); a reviewer praises this one's {aspect}",
    "criticized": "you found {title!r} poor on {aspect} (“{mine}”); reviewers rate this one's {aspect} well",
    "wrote_about": "you wrote about the {aspect} of {title!r} (“{mine}”); {n} reviewers praise this one's "
    "{aspect}",
    "wrote_about_one": "you wrote about the {aspect} of {title!r} (“{mine}”); a reviewer praises this "
    "one's {aspect}",
    "noted": "you wrote about the {aspect} of {title!r} (“{mine}”); {n} reviewers write about this one's "
    "{aspect}",
    "noted_one": "you wrote about the {aspect} of {title!r} (“{mine}”); a reviewer writes about this one's "
    "{aspect}",
    "theirs": " (“{theirs}”)",
    "summary_cares": "Cares most about {aspects}.",
    "summary_none": "Has not written about any aspect yet.",
    "demanding": "demanding",
    "easy": "easy to please",
    "balanced": "balanced",
    "new_user": "new here: what is popular and new",
    "featured": "featured",
    "like_item": "similar to {title!r}",
    "looks": "looks like {title!r} you {verb}",
}
_ZH = {
    "viewed": "浏览过",
    "clicked": "点击过",
    "cart": "加入购物车的",
    "purchase": "购买过",
    "review": "评价过",
    "dislike": "不喜欢的",
    "skip": "跳过的",
    "other": "接触过",
    "similar": "与您{verb}的“{title}”相似",
    "wrote": "与您评价中写的相近",
    "cf": "与您相似的用户喜欢",
    "trending": "正在流行",
    "after": "常在“{title}”之后购买",
    "new": "新品",
    "fallback": "热门",
    "praised": "您称赞过“{title}”的{aspect}（“{mine}”）；{n}位评价者称赞这款的{aspect}",
    "praised_one": "您称赞过“{title}”的{aspect}（“{mine}”）；一位评价者称赞这款的{aspect}",
    "criticized": "您认为“{title}”的{aspect}不好（“{mine}”）；评价者认为这款的{aspect}很好",
    "wrote_about": "您写到过“{title}”的{aspect}（“{mine}”）；{n}位评价者称赞这款的{aspect}",
    "wrote_about_one": "您写到过“{title}”的{aspect}（“{mine}”）；一位评价者称赞这款的{aspect}",
    "noted": "您写到过“{title}”的{aspect}（“{mine}”）；{n}位评价者写到这款的{aspect}",
    "noted_one": "您写到过“{title}”的{aspect}（“{mine}”）；一位评价者写到这款的{aspect}",
    "theirs": "（“{theirs}”）",
    "summary_cares": "最在意{aspects}。",
    "summary_none": "还没有写过任何方面的评价。",
    "demanding": "要求高",
    "easy": "容易满意",
    "balanced": "适中",
    "new_user": "新用户：热门和新品",
    "featured": "精选推荐",
    "like_item": "与“{title}”相似",
    "looks": "看起来像您{verb}的“{title}”",
}

#: The languages reasons and profiles can be worded in.
LANGUAGES: Mapping[str, Mapping[str, str]] = {"en": _EN, "zh": _ZH}


class Wording:
    """The phrases of one language.

    >>> Wording("zh").say("trending"), Wording("en").say("after", title="Capo")
    ('正在流行', "often taken after 'Capo'")
    """

    def __init__(self, language: str = "en") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
        self.language = language
        self._phrases = LANGUAGES[language]

    def say(self, key: str, **values: object) -> str:
        return self._phrases[key].format(**values)

    def verb(self, action: str) -> str:
        key = {"view": "viewed", "click": "clicked"}.get(action, action)
        return self._phrases.get(key, self._phrases["other"])
