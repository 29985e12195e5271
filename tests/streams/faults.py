"""What the crash tests share: kill a role's process and start it again, and who is still unanswered."""

from __future__ import annotations

import signal
import time

from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.stack import Stack, WorkerProcess
from tests.conftest import wait_for


def kill_and_restart(
    stack: Stack, workers: dict[str, WorkerProcess], role: str, producer: Replayer, recs: Collector,
    topic: str, probe: dict,
) -> float:  # fmt: skip
    """SIGKILL `role`'s process and start it again; then send `probe` (an event of a user of its
    own, on `topic`) and wait for its recommendation. The seconds from the restart to it."""
    victim = workers[role]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)
    stack.workers.remove(victim)
    restarted_at = time.monotonic()
    workers[role] = stack.start_worker([role])
    user = probe["user_id"]
    producer.send(topic, probe, user)
    producer.flush()
    wait_for(
        lambda: any(m["user_id"] == user for _, m in recs.messages),
        120,
        what=f"a recommendation after restarting {role}",
    )
    return time.monotonic() - restarted_at


def unanswered(recs: Collector, producer: Replayer, topic: str) -> list[str]:
    """Users whose last event on `topic` (as delivered) no recommendation answers yet."""
    last: dict[str, int] = {}
    for d in producer.delivered:
        if d.topic == topic and d.key is not None:
            last[d.key] = max(last.get(d.key, -1), d.offset)
    answered: dict[str, int] = {}
    for _, m in recs.messages:
        trigger = m.get("trigger") or {}
        if trigger.get("topic") == topic:
            answered[m["user_id"]] = max(answered.get(m["user_id"], -1), trigger["offset"])
    return [user for user, offset in last.items() if answered.get(user, -1) < offset]
