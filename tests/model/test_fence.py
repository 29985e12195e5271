"""The CF group's log: a worker's commit counts only while its claims hold, for every reader alike."""

from __future__ import annotations

import pickle

import numpy as np

from streamrec.model.cf.fence import Claim, Commit, Fence
from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.schemas import Click
from streamrec.streams.messages import group_message, parse_group_message


def _learner(worker: str) -> Learner:
    learner = Learner(OnlineCF(seed=1), worker=worker)
    learner.catalog.update({"guitar", "drum", "piano"})
    return learner


def _click(user: str, item: str, ts: float) -> Click:
    return Click(user_id=user, item_id=item, event="click", ts=ts)


def test_a_commit_after_another_workers_claim_is_invalid_for_every_reader() -> None:
    readers = [Fence(me=name) for name in ("a", "b", "c")]
    log = [
        Claim("a", {"clicks:0": "a1", "clicks:1": "a2"}),
        Commit("a", "t1", 0, {"clicks:0": (10, "a1")}),
        Claim("b", {"clicks:0": "b1"}),  # a was dropped from the group
        Commit("a", "t2", 0, {"clicks:0": (25, "a1"), "clicks:1": (7, "a2")}),
        Commit("a", "t3", 0, {"clicks:1": (9, "a2")}),  # the partition it still holds
        Commit("b", "t4", 0, {"clicks:0": (18, "b1")}),
    ]
    for fence in readers:
        verdicts = []
        for record in log:
            if isinstance(record, Claim):
                fence.claim(record)
            else:
                verdicts.append(fence.commit(record) is not None)
        assert verdicts == [True, False, True, True]
        assert fence.position == {"clicks:0": 18, "clicks:1": 9}
    assert readers[0].verdicts == {"t1": True, "t2": False, "t3": True}
    assert readers[1].verdicts == {"t4": True}


def test_a_partition_claimed_back_does_not_validate_learning_under_the_old_claim() -> None:
    fence = Fence(me="b")
    fence.claim(Claim("a", {"clicks:0": "a1"}))
    fence.claim(Claim("b", {"clicks:0": "b1"}))
    assert fence.commit(Commit("b", "t1", 0, {"clicks:0": (30, "b1")})) == []
    fence.claim(Claim("a", {"clicks:0": "a3"}))
    assert fence.commit(Commit("a", "t2", 0, {"clicks:0": (40, "a1")})) is None
    assert fence.commit(Commit("a", "t3", 0, {"clicks:0": (45, "a3")})) == []
    assert fence.position["clicks:0"] == 45


def test_parts_of_an_attempt_never_committed_are_dropped_by_the_next_attempt() -> None:
    fence = Fence(me="b")
    fence.claim(Claim("a", {"clicks:0": "a1"}))
    fence.part("a", "t1", "crashed before its commit")
    fence.part("a", "t2", "part 0")
    fence.part("a", "t2", "part 1")
    assert fence.commit(Commit("a", "t2", 2, {"clicks:0": (5, "a1")})) == ["part 0", "part 1"]
    assert fence.commit(Commit("a", "t1", 1, {"clicks:0": (3, "a1")})) == []


def test_a_fenced_workers_item_changes_reach_no_peer_and_a_valid_ones_reach_each_once() -> None:
    a, b = _learner("a"), _learner("b")
    log: list[bytes] = []

    def write(*messages: object) -> None:
        log.extend(group_message(m) for m in messages)  # type: ignore[arg-type]

    def read_all(reader: Learner, start: int) -> int:
        for raw in log[start:]:
            reader.receive(parse_group_message(raw))
        return len(log)

    write(Claim("a", {"clicks:0": "a1"}))
    a.learn(_click("ann", "guitar", 1.0))
    parts, commit = a.share({"clicks:0": (1, "a1")})
    write(*parts, commit)
    read = read_all(b, 0)
    guitar = b.model.item_vector("guitar").copy()
    assert np.allclose(guitar, a.model.item_vector("guitar"))

    a.learn(_click("ann", "drum", 2.0))  # learned after the group gave the partition to b
    write(Claim("b", {"clicks:0": "b1"}))
    parts, commit = a.share({"clicks:0": (2, "a1")})
    write(*parts, commit)
    read = read_all(b, read)
    assert not b.model.knows_item("drum"), "the fenced worker's change stays out"
    read_all(a, 0)
    assert list(a.fence.verdicts.values()) == [True, False]

    # The log read again from the start (a restart from an old checkpoint) applies nothing twice.
    read_all(b, 0)
    assert np.array_equal(b.model.item_vector("guitar"), guitar)


def test_the_fence_travels_in_a_checkpoint() -> None:
    fence = Fence(me="a")
    fence.claim(Claim("a", {"clicks:0": "a1"}))
    fence.commit(Commit("a", "t1", 0, {"clicks:0": (4, "a1")}))
    restored = pickle.loads(pickle.dumps(fence))
    assert restored.owner == fence.owner and restored.position == {"clicks:0": 4}
    assert restored.verdicts == {"t1": True}


def test_a_part_written_before_commits_is_applied_as_read() -> None:
    a, b = _learner("a"), _learner("b")
    a.learn(_click("ann", "piano", 1.0))
    parts, _ = a.share({})
    legacy = group_message(parts[0]).replace(b'"kind":"part",', b"").replace(b',"attempt":"', b',"_":"')
    assert b.receive(parse_group_message(legacy))
    assert np.allclose(b.model.item_vector("piano"), a.model.item_vector("piano"))


def test_a_worker_restarted_without_its_name_judges_the_staged_attempt_of_the_one_it_replaces() -> None:
    # Worker "a" staged a checkpoint for attempt t2, wrote its commit and died before putting the
    # checkpoint in place; its process comes back as "z", with no checkpoint to take the name from.
    log = [
        Claim("a", {"clicks:0": "a1"}),
        Commit("a", "t1", 0, {"clicks:0": (10, "a1")}),
        Commit("a", "t2", 0, {"clicks:0": (25, "a1")}),
    ]
    z = Fence(me="z")
    for record in log:
        z.claim(record) if isinstance(record, Claim) else z.commit(record)
    assert z.position == {"clicks:0": 25}
    # Resuming at 25 is right only with t2's checkpoint: it holds, an older attempt does not.
    assert z.holds("a", "t2") and not z.holds("a", "t1") and not z.holds("a", "t3")
    # A commit after another worker's claim holds for nobody.
    z.claim(Claim("b", {"clicks:0": "b1"}))
    z.commit(Commit("a", "t3", 0, {"clicks:0": (30, "a1")}))
    assert not z.holds("a", "t3")
    # Its own attempts are judged as before.
    assert not Fence(me="a").holds("a", "t2")


def test_a_fence_checkpointed_before_it_kept_each_workers_latest_commit_still_loads() -> None:
    fence = Fence(me="a")
    state = dict(fence.__dict__)
    del state["last"]
    old = Fence.__new__(Fence)
    old.__setstate__(state)
    assert old.last == {} and not old.holds("b", "t1")
