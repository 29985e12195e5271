"""What the recommender role and the API's copy of it share: the recommender the settings
describe, what aspects are called, and the reading of a user event from its topic."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping

import orjson

from streamrec.model.cf.factors import vector_size
from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Click, Impression
from streamrec.model.serving.recommender import Recommender
from streamrec.model.text.reviews import EncodedReview
from streamrec.model.users.profile import UserProfile
from streamrec.streams.context import Context
from streamrec.streams.messages import is_version_marker, parse_encoded_review
from streamrec.streams.settings import Settings

__all__ = ["aspect_labels", "make_recommender", "parse_user_event"]

log = logging.getLogger(__name__)


def aspect_labels(settings: Settings) -> dict[str, str]:
    """What each aspect is called in the deployment's language."""
    return {a.name: a.label(settings.language) for a in settings.aspects()}


def make_recommender(
    settings: Settings, text_dim: int, profiles: MutableMapping[str, UserProfile] | None = None
) -> Recommender:
    """The recommender as the settings describe it (the role's, and the API's copy)."""
    cfg = settings.recommender
    return Recommender(
        text_dim,
        vector_size(settings.cf.n_factors),
        profiles=profiles,
        half_life_s=cfg.half_life_days * 86_400.0,
        opinions=settings.opinions,
        language=settings.language,
        labels=aspect_labels(settings),
        n_candidates=cfg.n_candidates,
        mmr_lambda=cfg.mmr_lambda,
        rules=settings.list_rules(),
        modalities=settings.modalities,
        new_items=cfg.new_items,
        learn_blend=cfg.learn_blend,
        item_model=cfg.item_model_items > 0,
        item_model_every=cfg.item_model_every,
        item_model_items=max(cfg.item_model_items, 1),
    )


def parse_user_event(
    ctx: Context, topic: str, raw: bytes | None, key: bytes | None
) -> Click | Impression | EncodedReview | str | None:
    """A user event's typed content (a forget request: its user id), or None if there is none.

    Invalid inputs are the CF role's to dead-letter; here they are passed over.
    """
    if raw is None:
        return None
    topics = ctx.topics
    try:
        if topic == topics.clicks:
            return ctx.parser.click(raw)
        if topic == topics.forget:
            return ctx.parser.forget(raw).user_id
        if is_version_marker(raw):
            return None
        review = parse_encoded_review(raw, key or b"")
        # Read again by a new encoder: its author's profile holds it already.
        return None if review.reencoded else review
    except InvalidEvent:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        log.error("unreadable message in %s: %s", topic, exc)
        return None
