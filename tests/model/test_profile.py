"""A user profile's stored form holds every field, says its version, and equality sees every field."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from streamrec.model.text.opinions import Opinion
from streamrec.model.users.profile import PROFILE_FORMAT, ProfileFormatError, UserProfile


def full_profile() -> UserProfile:
    p = UserProfile("ann", half_life_s=3600.0, max_history=7, max_seen=9)
    p.show(["guitar", "amp"])
    p.observe("guitar", 10.0, "purchase", vector=np.array([1, 0], dtype=np.float32))
    p.show(["amp", "pick"])
    p.dislike("drum", 20.0, "dislike", np.array([0, 1], dtype=np.float32))
    p.note(
        -0.5,
        [Opinion("quality", -0.8, 0, 12, "it broke fast"), Opinion("value", 0.4, 14, 20, "cheap")],
        "drum",
    )
    p.offsets["clicks:0"] = 41
    return p


def test_every_field_survives_the_stored_form() -> None:
    p = full_profile()
    raw = p.to_bytes()
    assert orjson.loads(raw)["f"] == PROFILE_FORMAT
    back = UserProfile.from_bytes(raw)
    assert back == p
    for f in dataclasses.fields(UserProfile):
        mine, theirs = getattr(p, f.name), getattr(back, f.name)
        if isinstance(mine, np.ndarray):
            assert np.array_equal(mine, theirs), f.name
        else:
            assert mine == theirs, f.name


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(UserProfile)])
def test_equality_sees_a_change_to_any_field(name: str) -> None:
    p, q = full_profile(), full_profile()
    value = getattr(q, name)
    if isinstance(value, np.ndarray):
        changed = value + 1
    elif isinstance(value, str):
        changed = value + "x"
    elif isinstance(value, bool) or value is None:
        changed = 1
    elif isinstance(value, int | float):
        changed = value + 1
    elif isinstance(value, dict):
        changed = {**value, "extra": [1, 1, 1]}
    else:
        changed = [*value, value[-1]]
    setattr(q, name, changed)
    assert p != q, name


def test_a_deployment_settings_override_the_stored_ones() -> None:
    back = UserProfile.from_bytes(full_profile().to_bytes(), half_life_s=60.0)
    assert back.half_life_s == 60.0 and back.max_history == 7


def test_a_profile_of_the_first_format_still_reads() -> None:
    old = orjson.dumps({"u": "bob", "h": [["x", 1.0, "click"]], "s": {"x": 1.0}, "v": None, "w": 0.0,
                        "t": 0.0, "n": 1})  # fmt: skip
    back = UserProfile.from_bytes(old)
    assert back.user_id == "bob" and back.history == [("x", 1.0, "click")] and back.aspects == {}


def test_a_newer_format_is_refused_with_a_clear_error() -> None:
    data = orjson.loads(full_profile().to_bytes())
    data["f"] = PROFILE_FORMAT + 1
    with pytest.raises(ProfileFormatError, match=f"format {PROFILE_FORMAT + 1}.*newer"):
        UserProfile.from_bytes(orjson.dumps(data))
