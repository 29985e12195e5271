"""Deployment rules: read from a file with errors that say where, and obeyed by every list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamrec.model.ranking.rules import Boost, Pin, Rules, RulesError, load_rules
from streamrec.model.serving.recommender import Recommender


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _shop(rules: Rules | None = None) -> Recommender:
    rec = Recommender(text_dim=3, cf_dim=3, rules=rules)
    catalog = {
        "guitar": ("Acoustic guitar", _unit(1, 0, 0), ["guitars"]),
        "strings": ("Guitar strings", _unit(0.95, 0.1, 0), ["accessories", "guitars"]),
        "capo": ("Guitar capo", _unit(0.9, 0.2, 0), ["accessories", "house-brand"]),
        "pick": ("Guitar picks", _unit(0.85, 0.25, 0.1), ["accessories"]),
        "drum": ("Snare drum", _unit(0, 1, 0), ["drums"]),
        "sticks": ("Drum sticks", _unit(0.1, 0.95, 0), ["accessories", "drums"]),
        "piano": ("Piano", _unit(0, 0, 1), ["keys", "clearance"]),
    }
    for item, (title, vector, tags) in catalog.items():
        rec.on_item(item, title, vector, ts=0, tags=tags)
    rec.on_review("ann", "guitar", 5, ts=10, vector=_unit(1, 0.05, 0))
    return rec


def _ids(rec: Recommender, user: str = "ann", k: int = 4, **filters: list[str]) -> list[str]:
    return [s.item_id for s in rec.recommend([user], k=k, **filters)[0]]


def test_rules_read_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        'exclude_tags = ["adult"]\n[[boost]]\ntags = ["house-brand"]\nby = 0.5\n'
        '[[pin]]\nitem = "promo"\nposition = 2\n'
    )
    rules = load_rules(toml)
    assert rules.exclude_tags == ["adult"] and rules.boost[0].by == 0.5 and rules.pin[0].position == 2
    as_json = tmp_path / "rules.json"
    as_json.write_text('{"bury": [{"items": ["x"], "by": 1}]}')
    assert load_rules(as_json).shift("x", []) == -1.0
    assert Rules().empty and not rules.empty


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("exclude_tag = ['x']", "exclude_tag: Extra inputs are not permitted"),
        ("[[boost]]\nby = 'much'", "boost[0].by: Input should be a valid number"),
        ("[[boost]]\nby = 1", "boost[0]: give items or tags to move"),
        ("[[bury]]\nitems = ['a']\nby = -1", "bury[0].by: how far down, as a positive number"),
        ("[[pin]]\nitem = 'a'\n[[pin]]\nitem = 'b'", "pin: two items at one position"),
        ("exclude_items = ['a']\n[[pin]]\nitem = 'a'", "pin: items both pinned and excluded: ['a']"),
        ("[[pin]]\nitem = 'a'\nposition = 0", "pin[0].position: Input should be greater than or equal to 1"),
        ("exclude_tags = [", "is not valid TOML"),
    ],
)
def test_a_malformed_rules_file_says_what_is_wrong_and_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError, match="rules file") as caught:
        load_rules(path)
    assert says in str(caught.value)
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "missing.toml")


def test_excluded_tags_and_items_never_appear_and_the_list_is_refilled() -> None:
    plain = _ids(_shop(), k=6)
    assert "capo" in plain and "piano" in plain
    ruled = _ids(_shop(Rules(exclude_tags=["clearance"], exclude_items=["capo"])), k=6)
    assert "capo" not in ruled and "piano" not in ruled
    assert len(ruled) == 4  # all that is left: strings, pick, drum, sticks


def test_required_tags_select_only_those_items_even_beyond_the_other_sources() -> None:
    rec = _shop(Rules(require_tags=["drums", "keys"]))
    assert set(_ids(rec, k=5)) == {"drum", "sticks", "piano"}
    # A request's own filter narrows further, and is served by the items with that tag.
    assert _ids(rec, k=5, tags=["keys"]) == ["piano"]
    assert set(_ids(_shop(), k=5, tags=["accessories"])) == {"strings", "capo", "pick", "sticks"}
    assert _ids(_shop(), k=5, tags=["accessories"], exclude=["capo", "pick"]) == ["strings", "sticks"]


def test_boost_and_bury_move_items_and_pins_take_their_positions() -> None:
    plain = _ids(_shop(), k=6)
    boosted = _ids(_shop(Rules(boost=[Boost(tags=["clearance"], by=5)])), k=6)
    assert boosted.index("piano") < plain.index("piano")
    buried = _ids(_shop(Rules(bury=[Boost(items=[plain[0]], by=5)])), k=6)
    assert buried.index(plain[0]) > 0

    rec = _shop(Rules(pin=[Pin(item="drum", position=1), Pin(item="guitar", position=2)]))
    top = rec.recommend(["ann"], k=4)[0]
    # drum is pinned first; guitar is not listed: ann has taken it.
    assert top[0].item_id == "drum" and top[0].reasons == ["featured"]
    assert "guitar" not in [s.item_id for s in top] and len(top) == 4
    # Pins keep their positions whatever the ranking did with their items; one beyond k is not shown.
    ranked = _ids(_shop(), k=4)
    beyond = next(i for i in _ids(_shop(), k=8) if i not in ranked)  # pinned at 9 of a list of 4
    pins = [Pin(item=ranked[3], position=2), Pin(item=ranked[0], position=3), Pin(item=beyond, position=9)]
    pinned = _ids(_shop(Rules(pin=pins)), k=4)
    assert pinned[1] == ranked[3] and pinned[2] == ranked[0] and beyond not in pinned and len(pinned) == 4
    # A pinned item the rules exclude, or off sale, stays out.
    rec.withdraw("drum")
    assert "drum" not in _ids(rec)
