"""The CF role's checkpoints: written in the background, put in place once the group finds them valid.

A checkpoint holds the model and the offsets it learned up to; those offsets are committed only
once it is in place. Across the group, a checkpoint is put in place only once the group's log
(`cf-deltas`) finds its commit valid: no other worker claimed its partitions first
(`streamrec.model.cf.fence`). A worker dropped from the group (paused past its session timeout)
finds its commit invalid, drops what it learned since its last valid one, and reloads that
checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from streamrec.model.cf.fence import Commit
from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.streams.kafka.checkpoint import (
    Checkpoint,
    CheckpointStore,
    can_fork,
    exit_code,
    keep_long_lived,
)
from streamrec.streams.kafka.consumer import CheckpointedConsumer
from streamrec.streams.kafka.feed import GlobalFeed
from streamrec.streams.roles.cf.deltas import ROLE, Deltas

__all__ = ["Checkpoints"]

log = logging.getLogger(__name__)


class Checkpoints(Deltas):
    """Taking the model from a checkpoint, and writing, landing and settling checkpoints (a mixin
    of `CFRole`)."""

    # The role's state these methods share; `CFRole.__init__` sets it.
    store: CheckpointStore
    consumer: CheckpointedConsumer
    peers: GlobalFeed
    _fenced: bool
    _landing: asyncio.Future[None] | None
    _lock: asyncio.Lock
    _last_checkpoint: float
    #: The attempt of the checkpoint this process staged last.
    _staged_attempt: str | None

    def _restore(self, saved: Checkpoint | None) -> None:
        """Take the model, its offsets and the group log's state from a checkpoint (None: new)."""
        settings = self.ctx.settings
        catalog = self.learner.catalog if hasattr(self, "learner") else set()
        if saved is not None:
            self.learner = Learner.from_state(saved.model, negatives="cf_negatives" in settings.opinions)
        else:
            cfg = settings.cf
            self.learner = Learner(
                OnlineCF(n_factors=cfg.n_factors, n_negatives=cfg.n_negatives, lr=cfg.lr),
                # A worker that goes back to nothing keeps its name among the workers.
                worker=self.learner.worker if hasattr(self, "learner") else None,
                negatives="cf_negatives" in settings.opinions,
            )
        self.learner.catalog = catalog
        self.model = self.learner.model
        #: Next offset to learn per "topic:partition", inputs and the group's log.
        self.offsets: dict[str, int] = dict(saved.offsets) if saved is not None else {}
        #: The offsets of the last checkpoint in place (the last valid commit).
        self._durable = dict(self.offsets)
        self._uncommitted = False

    async def _settle(self) -> None:
        """Hold nothing but learning the group's log found valid, before claiming partitions.

        A checkpoint staged and not put in place is judged first (`_take_staged`): checkpointing
        anything else would stage over it. Then what was learned since the last valid commit is
        committed; a worker whose commit was found invalid (or could not be written) goes back
        to its last checkpoint in place.
        """
        await self.peers.caught_up.wait()
        if self._landing is not None:
            await asyncio.shield(self._landing)
        await self._take_staged()
        if self._uncommitted and not self._fenced:
            await self._checkpoint()
            if self._landing is not None:
                await asyncio.shield(self._landing)
            await self._take_staged()
        if self._fenced or self._learned():
            self._reload(self.store.load())

    async def _take_staged(self) -> None:
        """A staged checkpoint whose commit the group's log holds is put in place: this worker's
        own (a landing that failed after writing its commit; the model is ahead of it) counts as
        durable; one staged by the process this one replaces, killed between its commit and
        putting it in place, is resumed from (a successor reads that worker's item changes off
        the log before it claims anything: staging those would overwrite the only model behind
        the partitions' position)."""
        held = await self._judge_staged()
        if held is None:
            return
        if held.model.get("attempt") == self._staged_attempt:
            self._durable = dict(held.offsets)
            log.info("a checkpoint whose landing failed holds a valid commit: put in place")
        else:
            log.info("a checkpoint staged before a crash holds a valid commit: resuming from it")
            self._reload(held)

    async def _judge_staged(self) -> Checkpoint | None:
        """A checkpoint staged and not put in place (a crash or a failed landing came between its
        commit and `publish`): put in place and returned if the group's log holds its commit, by
        this worker or by the one this process replaces; else discarded. A staged checkpoint
        whose commit is valid is the latest valid one: nothing may be staged over it before."""
        if not self.store.staged.exists():
            return None
        staged = self.store.load_staged()
        await self.group.read_back()
        if staged is not None and self.learner.fence.holds(
            str(staged.model.get("worker", "")), str(staged.model.get("attempt", ""))
        ):
            await asyncio.get_running_loop().run_in_executor(None, self.store.publish)
            return staged
        self.store.discard_staged()
        return None

    def _reload(self, saved: Checkpoint | None) -> None:
        """Go back to a checkpoint: its model, and the group's log read again from its offsets."""
        self._restore(saved)
        self.peers.rewind(self.offsets)
        self._fenced = False
        log.warning(
            "CF worker %s resumes from its checkpoint of %s: %d events learned",
            self.learner.worker,
            time.strftime("%H:%M:%S", time.localtime(saved.saved_at)) if saved else "nothing",
            self.model.n_learned,
        )

    async def checkpoint(self) -> None:
        """Checkpoint now, and wait until it is in place and the offsets are committed."""
        async with self._lock:
            await self._checkpoint()
        if self._landing is not None:
            await self._landing

    async def _checkpoint(self) -> None:
        """Make outputs, model and offsets durable, then commit the offsets.

        The model is snapshotted by a forked child (`CheckpointStore.fork_save`); learning goes
        on while the outputs are flushed and the file is written, and the offsets are committed
        once it is in place. One checkpoint lands at a time, in order.
        """
        self._last_checkpoint = time.monotonic()
        if self._landing is not None and not self._landing.done():
            await self._landing
        if not self._uncommitted or self._fenced:
            return
        if self.store.staged.exists():
            try:
                await self._take_staged()
            except OSError as exc:
                log.error("CF checkpoint postponed: the group's log cannot be read back: %s", exc)
                return
            if not self._uncommitted:  # resumed from a crashed predecessor's checkpoint
                return
        started = time.perf_counter()
        self.publish()
        commit = self.share_deltas()
        attempt = self._staged_attempt = commit.attempt
        offsets = dict(self.offsets)
        state = {**self.learner.state(), "attempt": attempt}
        loop = asyncio.get_running_loop()
        staged: Awaitable[Any]
        if can_fork():
            staged = loop.run_in_executor(None, exit_code, self.store.fork_save(state, offsets))
        else:
            staged = loop.run_in_executor(None, self.store.stage, self.store.dumps(state, offsets))
        self._uncommitted = False
        keep_long_lived()
        self.ctx.metrics.checkpoint_pause.labels(ROLE).observe(time.perf_counter() - started)
        self._landing = asyncio.ensure_future(self._land(staged, offsets, commit, started))

    async def _land(
        self, staged: Awaitable[Any], offsets: dict[str, int], commit: Commit, started: float
    ) -> None:
        """Once the checkpoint is staged, its commit goes to the group's log and the outputs are
        delivered; once the log finds the commit valid, the checkpoint is put in place and the
        offsets committed (invalid: fenced). A worker killed before the commit reached the log
        resumes from its previous checkpoint, whose commit is the latest valid one."""
        attempt = commit.attempt
        try:
            code = await staged
            if code:
                raise OSError(f"its writer exited {code}")
            self.group.write(commit)
            await self.ctx.output.flush()
            await self.group.read_back()
            verdict = self.learner.fence.verdicts.get(attempt)
            if verdict is None:
                raise OSError("its commit was not read back from the group's log")
            if not verdict:
                self.store.discard_staged()
                self._fenced = True
                self.ctx.metrics.retries.labels(f"{ROLE}_fenced").inc()
                log.warning(
                    "CF worker %s was fenced: another worker claimed its partitions before this "
                    "checkpoint's commit; what it learned since its last checkpoint is dropped",
                    self.learner.worker,
                )
                return
            await asyncio.get_running_loop().run_in_executor(None, self.store.publish)
            self._durable = offsets
            if not await self.consumer.commit(offsets):
                # Refused by a rebalance: with no event after it, nothing else would commit them,
                # and the group would show a backlog it does not have.
                self._uncommitted = True
        except Exception as exc:  # noqa: BLE001 - the next checkpoint holds this state too
            log.error("CF checkpoint not written or committed, retrying with the next one: %s", exc)
            self._uncommitted = True
            return
        self.ctx.metrics.cf_checkpoint_seconds.observe(time.perf_counter() - started)
