"""What a CF worker publishes of what it learned, and takes in of what the other workers learned.

The vectors of users and items whose factors changed go to `vectors`; the item factor changes,
and the commit of the offsets they were learned up to, go to the group's log (`cf-deltas`),
from which every other worker applies them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import ConsumerRecord

from streamrec.model.cf.fence import Commit
from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.offsets import partition_key
from streamrec.streams.context import Context
from streamrec.streams.kafka.group_log import GroupLog
from streamrec.streams.messages import parse_group_message, vector_key, vector_message

__all__ = ["ROLE", "Deltas"]

#: The role's name: its checkpoint's, its consumer's and its metrics' label.
ROLE = "cf"


class Deltas:
    """The CF role's outputs of learning, and its intake of the other workers' (a mixin of `CFRole`)."""

    # The role's state these methods share; `CFRole.__init__` sets it.
    ctx: Context
    learner: Learner
    model: OnlineCF
    group: GroupLog
    offsets: dict[str, int]
    _durable: dict[str, int]
    _claims: dict[str, str]
    _uncommitted: bool
    _last_publish: float

    async def _on_deltas(self, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            self.offsets[partition_key(record.topic, record.partition)] = record.offset + 1
            if record.value is not None and self.learner.receive(parse_group_message(record.value)):
                self._uncommitted = True

    def share_deltas(self) -> Commit:
        """Send what local learning changed in item factors; the commit of the offsets it learned
        up to since the last valid commit, which makes them count, is the caller's to send once
        the checkpoint holding that learning is on disk (a commit in the log with no checkpoint
        behind it would be a position a restarted worker resumes from with nothing learned)."""
        learned = {tp: (offset, self._claims.get(tp, "")) for tp, offset in self._learned().items()}
        parts, commit = self.learner.share(learned)
        for part in parts:
            self.group.write(part)
        return commit

    def _learned(self) -> dict[str, int]:
        """The input offsets learned past the last checkpoint in place."""
        deltas = self.ctx.topics.cf_deltas
        return {
            tp: off
            for tp, off in self.offsets.items()
            if tp.rsplit(":", 1)[0] != deltas and self._durable.get(tp) != off
        }

    def publish(self) -> None:
        """Send the vectors of users and items whose factors changed."""
        ctx, model = self.ctx, self.model
        users, items = model.drain_changed()
        topic, version, now = ctx.topics.vectors, model.version, time.time()
        for user in users:
            vector = model.user_vector(user)
            if vector is not None:
                key = vector_key("user", "cf", str(user))
                ctx.output.send(topic, vector_message("user", "cf", str(user), vector, version, now), key=key)
        item_list = [str(i) for i in items]
        for item, vector in zip(item_list, model.item_vectors(item_list), strict=True):
            key = vector_key("item", "cf", item)
            ctx.output.send(topic, vector_message("item", "cf", item, vector, version, now), key=key)
        self._last_publish = time.monotonic()
