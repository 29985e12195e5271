"""Atomic checkpoints: a model and the input offsets it has learned up to, in one file."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streamrec.streams.settings import Settings

__all__ = ["AckAfterCheckpoint", "Checkpoint", "CheckpointStore"]

log = logging.getLogger(__name__)

_FORMAT = 1


@dataclass
class Checkpoint:
    model: Any
    #: Next offset to learn, per "topic:partition".
    offsets: dict[str, int]
    saved_at: float


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
        """The store of `role`'s checkpoint, in its state directory."""
        return cls(settings.state_dir(role) / "checkpoint.pkl")

    def load(self) -> Checkpoint | None:
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            data = pickle.load(f)  # our own file, written by `save`
        if data.get("format") != _FORMAT:
            raise ValueError(f"checkpoint {self.path} has format {data.get('format')!r}, expected {_FORMAT}")
        return Checkpoint(model=data["model"], offsets=data["offsets"], saved_at=data["saved_at"])

    def dumps(self, model: Any, offsets: dict[str, int]) -> bytes:
        """Serialize now (cheap, consistent); `write` may then run in another thread."""
        return pickle.dumps(
            {"format": _FORMAT, "model": model, "offsets": dict(offsets), "saved_at": time.time()},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def write(self, blob: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def save(self, model: Any, offsets: dict[str, int]) -> None:
        self.write(self.dumps(model, offsets))


class _Ackable(Protocol):
    def ack(self) -> bool: ...


class AckAfterCheckpoint:
    """Holds a faust agent's events until a checkpoint that covers them is on disk, then acks them.

    A role serializes its state under its own lock (`write(blob)`); the file is then written in
    a thread while events flow on, checkpoints land in the order they were taken, and only
    then are the events they cover acknowledged, so faust commits nothing that is not durable.
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._pending: list[_Ackable] = []
        self._writing: asyncio.Future[None] | None = None

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    def hold(self, events: Sequence[_Ackable]) -> None:
        self._pending.extend(events)

    def write(self, blob: bytes) -> None:
        """Write `blob` (the state after every held event) in the background; ack them once it is."""
        covered, self._pending = self._pending, []
        self._writing = asyncio.ensure_future(self._write(blob, covered, self._writing))

    async def drain(self) -> None:
        """Wait for the checkpoints being written."""
        if self._writing is not None:
            await self._writing

    async def _write(
        self, blob: bytes, covered: list[_Ackable], previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await previous  # checkpoints land in the order they were taken
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.store.write, blob)
        except OSError as exc:
            # The next checkpoint holds this state too: its events wait for that one.
            log.error("checkpoint %s not written, retrying with the next one: %s", self.store.path, exc)
            self._pending[:0] = covered
            return
        for event in covered:
            event.ack()
