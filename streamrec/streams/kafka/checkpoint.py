"""Atomic checkpoints: a model and the input offsets it has learned up to, in one file.

A role's state is snapshotted by a forked child (`fork_save`), as Redis's background save does:
the child has the state as it was at the fork, copy-on-write, and serializes and writes it while
the role goes on. The event loop waits only for the fork, whose cost follows the process's page
tables, not its objects: about a millisecond per 100 MB, where serializing the recommender's
counts took 0.3 s at 120,000 clicks. Where `fork` is not there (Windows), or not wanted
(`STREAMREC_CHECKPOINT_FORK=0`), the state is serialized on the loop and written in a thread.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import pickle
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamrec.streams.errors import StateInUseError
from streamrec.streams.settings import Settings

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks, the directory is not guarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["Checkpoint", "CheckpointStore", "CheckpointWriter", "can_fork", "exit_code", "keep_long_lived"]

log = logging.getLogger(__name__)

_FORMAT = 1
#: How long `CheckpointStore.claim` waits for a process that holds the directory to end.
CLAIM_WAIT_S = 10.0


@dataclass
class Checkpoint:
    model: Any
    #: Next offset to learn, per "topic:partition".
    offsets: dict[str, int]
    saved_at: float


#: Where the modules of `streamrec.model` went when it was divided into rooms (0.2.0): a
#: checkpoint written before names the old module of each object it holds.
_MOVED = {
    "blend": "ranking.blend",
    "catalog": "text.catalog",
    "cf": "cf.mf",
    "content_cf": "cf.content",
    "contributions": "users.contributions",
    "dedupe": "events.dedupe",
    "diversity": "ranking.diversity",
    "ease": "cf.ease",
    "encoder": "text.encoder",
    "evaluation": "metrics.accumulators",
    "exposure": "users.exposure",
    "fence": "cf.fence",
    "forgotten": "users.forgotten",
    "generated_cf": "cf.generated",
    "images": "text.images",
    "learner": "cf.learner",
    "online": "metrics.online",
    "opinion_parts": "text.opinion_parts",
    "opinions": "text.opinions",
    "popularity": "ranking.popularity",
    "portrait": "users.portrait",
    "profile": "users.profile",
    "projection": "text.projection",
    "ranker": "ranking.ranker",
    "reader": "text.reader",
    "reasons": "ranking.reasons",
    "recommender": "serving.recommender",
    "reputation": "text.reputation",
    "reviews": "text.reviews",
    "rules": "ranking.rules",
    "runtime": "text.runtime",
    "schemas": "events.schemas",
    "sentiment": "text.sentiment",
    "serving": "serving.service",
    "text_space": "text.space",
    "text_versions": "text.versions",
    "wording": "text.wording",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("streamrec.model."):
            old = module.removeprefix("streamrec.model.")
            module = "streamrec.model." + _MOVED.get(old, old)
        return super().find_class(module, name)


class CheckpointStore:
    """Writes `Checkpoint`s so that a crash at any instant leaves the previous one whole.

    The file is written beside the target, fsynced, and renamed over it; the rename
    is atomic on POSIX file systems. Model and offsets travel together, so a restart
    resumes exactly where the saved model stopped learning: no event twice, none lost.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def of(cls, settings: Settings, role: str) -> CheckpointStore:
        """The store of `role`'s checkpoint, in its state directory (to read it)."""
        return cls(settings.state_dir(role) / "checkpoint.pkl")

    @classmethod
    def claim(cls, settings: Settings, role: str, wait_s: float = CLAIM_WAIT_S) -> CheckpointStore:
        """`of`, for the one process that writes it: its state directory is locked to this
        process until it ends, so that a second process given the same directory stops with an
        error saying so, instead of overwriting this one's checkpoints. Waits up to `wait_s` for
        a process that holds it and is ending."""
        store = cls.of(settings, role)
        store.hold(wait_s)
        return store

    def hold(self, wait_s: float = CLAIM_WAIT_S) -> None:
        """Lock the state directory to this process (a POSIX lock: the kernel drops it when the
        process ends, however it ends, and its forked children do not hold it)."""
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                    os.close(fd)
                    raise StateInUseError(
                        f"{self.path.parent} is the state directory of a process still running "
                        f"(pid {holder}): give each worker process its own --data-dir "
                        "(STREAMREC_DATA_DIR)"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._held = fd  # open for the life of the process: closing it would drop the lock

    def load(self) -> Checkpoint | None:
        return self._read(self.path)

    def load_staged(self) -> Checkpoint | None:
        """A checkpoint staged and not published (a crash came between), if one is whole."""
        try:
            return self._read(self.staged)
        except (EOFError, pickle.UnpicklingError, ValueError):
            return None  # cut short by the crash

    def discard_staged(self) -> None:
        self.staged.unlink(missing_ok=True)

    def _read(self, path: Path) -> Checkpoint | None:
        if not path.exists():
            return None
        with open(path, "rb") as f:
            return _decode(_Unpickler(f).load(), str(path))  # our own file, written by `save`

    @staticmethod
    def loads(blob: bytes, where: str) -> Checkpoint:
        """A checkpoint from the bytes of its file (a snapshot read from a topic, `where`)."""
        return _decode(_Unpickler(io.BytesIO(blob)).load(), where)

    def dumps(self, model: Any, offsets: dict[str, int]) -> bytes:
        """Serialize now (cheap, consistent); `write` may then run in another thread."""
        return pickle.dumps(
            {"format": _FORMAT, "model": model, "offsets": dict(offsets), "saved_at": time.time()},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @property
    def staged(self) -> Path:
        """Where a checkpoint is written before `publish` puts it in place."""
        return self.path.with_suffix(self.path.suffix + ".tmp")

    def stage(self, blob: bytes) -> None:
        """Write `blob` beside the checkpoint, synced; `publish` then makes it the checkpoint."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.staged, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())

    def publish(self) -> None:
        """The staged file becomes the checkpoint, atomically (a rename), and durably."""
        os.replace(self.staged, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write(self, blob: bytes) -> None:
        self.stage(blob)
        self.publish()

    def save(self, model: Any, offsets: dict[str, int]) -> None:
        self.write(self.dumps(model, offsets))

    def fork_save(self, model: Any, offsets: dict[str, int]) -> int:
        """Stage a checkpoint in a forked child, which exits 0 once the staged file is synced;
        returns its pid. `publish` then puts it in place.

        The child touches nothing but the state and the file: no event loop, no client, no lock
        another thread may have held at the fork; it leaves with `os._exit`, running no handler.
        """
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            gc.disable()  # collections would copy pages for nothing
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            self.stage(self.dumps(model, offsets))
            code = 0
        except BaseException:  # noqa: BLE001 - the parent hears of it from the exit status
            code = 1
        finally:
            os._exit(code)


def _decode(data: Any, where: str) -> Checkpoint:
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"checkpoint {where} has format {found!r}, expected {_FORMAT}")
    return Checkpoint(model=data["model"], offsets=data["offsets"], saved_at=data["saved_at"])


def keep_long_lived() -> None:
    """Objects that lived to a checkpoint are the role's state: move them out of the collector's
    full passes (`gc.freeze`). A full collection walked every object the recommender holds,
    100-300 ms at 120,000 clicks (550,000 objects), on the event loop; it now walks only what was
    made since the last checkpoint. What the state lets go is still freed by reference counting;
    only a reference cycle that outlived the young generations would stay."""
    gc.freeze()


def can_fork() -> bool:
    """Whether checkpoints are snapshotted by a forked child here."""
    return hasattr(os, "fork") and os.environ.get("STREAMREC_CHECKPOINT_FORK", "1") != "0"


def exit_code(pid: int) -> int:
    """Wait for a child; its exit code."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class CheckpointWriter:
    """Writes a role's checkpoints in the background, in order, and says when each has landed.

    A role hands over its state under its own lock (`snapshot`, or `write` with a serialized
    one); the file is then written by a forked child or in a thread while events flow on,
    checkpoints land in the order they were taken, and only then is `landed` awaited (a role
    commits its consumer's offsets there), so nothing is committed that is not durable. A role
    that changed its state since the last checkpoint says so (`changed`); a checkpoint that could
    not be written leaves it changed.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._changed = False
        self._writing: asyncio.Future[None] | None = None

    @property
    def holding(self) -> bool:
        """Whether the state holds anything the last checkpoint taken does not."""
        return self._changed

    def changed(self) -> None:
        """The state moved on since the last checkpoint taken."""
        self._changed = True

    def write(self, blob: bytes, landed: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Write `blob` (the state as it is now) in the background, then await `landed` (a role
        commits its consumer's offsets there)."""
        self._changed = False
        self._writing = asyncio.ensure_future(self._write(blob, self._writing, landed))

    async def snapshot(
        self,
        model: Any,
        offsets: dict[str, int],
        before: Callable[[], Awaitable[None]] | None = None,
        landed: Callable[[], Awaitable[Any]] | None = None,
    ) -> float:
        """Checkpoint `model` and `offsets` as they are now; in the background, once `before`
        (flushing what the events produced) is done and the file is written, it becomes the
        checkpoint and `landed` is awaited. Returns the seconds the caller waited: the fork, or the
        serialization where there is no fork."""
        if self._writing is not None and not self._writing.done():
            await self._writing  # one at a time: checkpoints land in the order they were taken
        self._changed = False
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        staged: Awaitable[Any]
        if can_fork():
            staged = loop.run_in_executor(None, exit_code, self.store.fork_save(model, offsets))
        else:
            staged = loop.run_in_executor(None, self.store.stage, self.store.dumps(model, offsets))
        keep_long_lived()
        waited = time.perf_counter() - started
        self._writing = asyncio.ensure_future(self._finish(staged, before, landed))
        return waited

    async def _finish(
        self,
        staged: Awaitable[Any],
        before: Callable[[], Awaitable[None]] | None,
        landed: Callable[[], Awaitable[Any]] | None,
    ) -> None:
        try:
            if before is not None:
                await before()
            code = await staged
            if code:
                raise OSError(f"its writer exited {code}")
            await asyncio.get_running_loop().run_in_executor(None, self.store.publish)
        except Exception as exc:  # noqa: BLE001 - the next checkpoint holds this state too
            log.error("checkpoint %s not written, retrying with the next one: %s", self.store.path, exc)
            self._changed = True
            return
        if landed is not None:
            await landed()

    async def drain(self) -> None:
        """Wait for the checkpoints being written."""
        if self._writing is not None:
            await self._writing

    async def _write(
        self,
        blob: bytes,
        previous: asyncio.Future[None] | None,
        landed: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        if previous is not None:
            await previous  # checkpoints land in the order they were taken
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.store.write, blob)
        except OSError as exc:
            # The next checkpoint holds this state too: its events wait for that one.
            log.error("checkpoint %s not written, retrying with the next one: %s", self.store.path, exc)
            self._changed = True
            return
        if landed is not None:
            await landed()
