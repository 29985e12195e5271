"""Events of a forgotten user that reach a worker after their request stay out, if written before it."""

from __future__ import annotations

import pickle

import numpy as np

from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.schemas import Click, Trigger
from streamrec.model.serving.recommender import Recommender
from streamrec.model.serving.service import Serving


def test_a_click_written_before_the_request_and_read_after_it_stays_out() -> None:
    rec = Recommender(text_dim=2, cf_dim=3)
    for item in ("a", "b"):
        rec.on_item(item, item, np.array([1.0, 0.0], dtype=np.float32), ts=0)
    serving = Serving(rec)
    at = Trigger(topic="clicks", partition=0, offset=0, ts=10.0)
    assert serving.click(Click(user_id="ann", item_id="a", event="click", ts=1.0), at)
    serving.forget("ann", at=20.0)
    # Read again after a restart (a later offset of the log, written before the request).
    late = Click(user_id="ann", item_id="b", event="click", ts=2.0)
    assert not serving.click(late, at.model_copy(update={"offset": 1, "ts": 15.0}))
    assert "ann" not in rec.profiles and "ann" not in rec.contributions
    assert rec.takes_of("b") == 0 and serving.offsets["clicks:0"] == 2
    # What they send after asking is theirs.
    again = Click(user_id="ann", item_id="b", event="click", ts=30.0)
    assert serving.click(again, at.model_copy(update={"offset": 2, "ts": 30.0}))
    assert rec.takes_of("b") == 1
    # The marks travel in checkpoints, by digest: no user id in them.
    restored = pickle.loads(pickle.dumps(serving.forgotten))
    assert restored.covers("ann", 19.0) and b"ann" not in pickle.dumps(serving.forgotten)


def test_cf_passes_over_events_of_a_user_from_before_their_request() -> None:
    learner = Learner(OnlineCF(seed=1))
    learner.catalog.update({"a", "b"})
    assert learner.learn(Click(user_id="ann", item_id="a", event="click", ts=1.0), written=10.0)
    assert learner.forget("ann", at=20.0) == ["cf factors"]
    assert not learner.learn(Click(user_id="ann", item_id="b", event="click", ts=2.0), written=15.0)
    assert learner.model.holds("ann") == []
    assert learner.learn(Click(user_id="ann", item_id="b", event="click", ts=3.0), written=21.0)
    assert learner.model.holds("ann")
