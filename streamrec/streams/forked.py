"""Work done in a forked child, its result handed back on the event loop.

A recommender refits its item model from every user's takes (a matrix inverse over the most
taken items: 0.1-0.3 s on a CPU core). On the event loop every event behind it would wait; on a
thread, a checkpoint's fork while that thread is inside OpenBLAS deadlocks the parent. A forked
child has neither problem: it computes from a copy-on-write snapshot of the state as it was at
the fork (nothing to copy on the loop), writes its pickled result to a pipe and exits; the loop
pays the fork (about what a checkpoint's fork costs) and the unpickling, and, while the child
lives, its own writes to pages the two share are copied first: a child at work slows the loop.
So children work at most `duty` of the time: after one that took `t` seconds, the next is
turned down for `t * (1 / duty - 1)` seconds (its caller asks again when next due).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import time
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits

from streamrec.streams.kafka.checkpoint import can_fork, exit_code

__all__ = ["InChild"]

log = logging.getLogger(__name__)


class InChild:
    """Runs `work` in a forked child and calls `done` with its result on the event loop (None if
    the child failed); where processes cannot fork, runs it on the spot.

    Called from a running event loop, as `Recommender.fit_elsewhere` is.
    """

    def __init__(self, name: str, timeout_s: int = 600, duty: float = 0.1) -> None:
        self.name = name
        #: A child still working after this long is stopped (SIGALRM) and counts as failed.
        self.timeout_s = timeout_s
        #: The most of the time children may work.
        self.duty = duty
        self._running: dict[int, asyncio.Task[None]] = {}
        #: Until when a new child is turned down (monotonic clock).
        self._resting_until = 0.0

    def __call__(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        if not can_fork():
            done(work())
            return
        started = time.monotonic()
        if started < self._resting_until:
            done(None)  # turned down: the last child's work is too recent
            return
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:  # no memory or processes left for a child: tried again when due
            os.close(read)
            os.close(write)
            log.error("%s: no child process (%s); the next one is tried when due", self.name, exc)
            done(None)
            return
        if pid == 0:  # the child: no event loop, no client, no lock; it leaves with os._exit
            code = 1
            try:
                os.close(read)
                gc.disable()  # collections would copy pages for nothing
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
                    signal.signal(sig, signal.SIG_DFL)
                # A thread of the parent inside a BLAS call at the fork may leave the library's
                # thread pool locked in the child: one BLAS thread here (no pool), and a child that
                # hangs regardless is stopped, so the next one is tried.
                signal.alarm(self.timeout_s)
                with threadpool_limits(1, "blas"):
                    result = work()
                blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(blob)
                code = 0
            except BaseException:  # noqa: BLE001 - the parent hears of it from the exit status
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        task = asyncio.ensure_future(self._collect(pid, read, done, started))
        self._running[pid] = task
        task.add_done_callback(lambda _: self._running.pop(pid, None))

    async def _collect(self, pid: int, fd: int, done: Callable[[Any], None], started: float) -> None:
        loop = asyncio.get_running_loop()
        result = None
        try:
            blob = await loop.run_in_executor(None, _read_all, fd)
            code = await loop.run_in_executor(None, exit_code, pid)
            if code == 0:
                result = pickle.loads(blob)
                ended = time.monotonic()
                self._resting_until = ended + (ended - started) * (1.0 / self.duty - 1.0)
            else:
                log.error("%s: its process exited %d; the next one is tried when due", self.name, code)
        except Exception as exc:  # noqa: BLE001 - the next one is tried when due
            log.error("%s: its result could not be read: %s", self.name, exc)
        done(result)

    async def close(self) -> None:
        """Stop what is still running: its result would come to a closed role."""
        for pid, task in list(self._running.items()):
            task.cancel()
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            await asyncio.get_running_loop().run_in_executor(None, _reap, pid)
        self._running.clear()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def resting_s(self) -> float:
        """Seconds until a new child is taken on (0: now)."""
        return max(0.0, self._resting_until - time.monotonic())


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
