"""The CF group's log on `cf-deltas`: what a worker appends, and waiting to have read it back.

Everything goes to the topic's first partition, so that every worker reads claims, delta parts and
commits in one order and reaches the same verdicts (`streamrec.model.cf.fence`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from aiokafka import TopicPartition

from streamrec.model.cf.fence import Claim, Commit
from streamrec.model.cf.learner import DeltaBatch
from streamrec.streams.kafka.consumer import tp_key
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.kafka.output import Output
from streamrec.streams.messages import group_message

__all__ = ["GroupLog"]

log = logging.getLogger(__name__)

#: How long a worker waits for the log to be read to its end, before saying so (and waiting on).
READ_WAIT_S = 30.0


class GroupLog:
    """Appends to `topic` through `output`; `feed` is the worker's reader of it."""

    def __init__(self, output: Output, topic: str, feed: GlobalFeed) -> None:
        self.output = output
        self.topic = topic
        self.feed = feed

    def write(self, message: Claim | Commit | DeltaBatch) -> None:
        self.output.send(self.topic, group_message(message), key=message.worker.encode(), partition=0)

    async def read_back(self) -> None:
        """Wait until the log has been read to its current end (what was flushed is then judged)."""
        while not await self.feed.catch_up(timeout=READ_WAIT_S):
            if not self.feed.reading:
                raise OSError("the group's log is not being read (stopping?)")
            log.warning("the group's log (%s) is not read to its end after %.0fs", self.topic, READ_WAIT_S)

    async def claim(self, worker: str, partitions: Sequence[TopicPartition]) -> dict[str, str]:
        """Claim `partitions` for `worker` (a new claim id each), and read the log back past the
        claim: every commit written before it is judged. The claims ("topic:partition" -> id)."""
        claim = Claim(worker, {tp_key(tp): uuid.uuid4().hex[:16] for tp in partitions})
        self.write(claim)
        await self.output.flush()
        await self.read_back()
        return dict(claim.partitions)
