"""A state's snapshot on a compacted topic, so that a process with no disk of its own starts from it.

A snapshot is a blob (a checkpoint file's bytes) cut into chunks, each a record keyed
`<snapshot id>/<n>`, then a manifest keyed `manifest/<publisher>` that names the snapshot, its
chunk count, its size and its digest. All of it goes to the topic's first partition, in order, so
a manifest always follows its chunks. Once its manifest is acknowledged, the publisher tombstones
the chunks of its own previous snapshot: compaction then keeps, per publisher, its latest manifest
and that manifest's chunks, still in that order. What a process left when it went for good
expires with the topic's retention (`TOPIC_CONFIGS`), which every live publisher outruns.

A reader takes the last manifest on the topic whose chunks are all there and whose digest
matches. It holds one chunk set at a time beside the best snapshot so far, however many processes
publish: a set is dropped as soon as its manifest is read. A publication cut short (a crash
between its chunks) has no manifest and is never read.

The digest is an HMAC-SHA256 keyed with a secret the publishers and readers share (the API's
token, where one is configured): a snapshot is unpickled, so a reader takes none that a process
without the secret wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import ConsumerRecord

from streamrec.streams.kafka.clients import KafkaClients
from streamrec.streams.kafka.output import Output
from streamrec.streams.kafka.restore import read_to_end

__all__ = ["Manifest", "SnapshotPublisher", "live_snapshots", "read_snapshot"]

log = logging.getLogger(__name__)

#: Bytes a chunk carries: well under a broker's default record limit (1 MiB).
CHUNK_BYTES = 256 * 1024
#: Chunks queued in the producer before it is flushed: a snapshot is never held whole in memory.
FLUSH_EVERY = 64
MANIFEST_PREFIX = b"manifest/"


@dataclass(frozen=True)
class Manifest:
    """What a snapshot is: the value of a `manifest/<publisher>` record."""

    id: str
    publisher: str
    chunks: int
    size: int
    #: HMAC-SHA256 of the blob, hex.
    digest: str
    saved_at: float

    def chunk_key(self, n: int) -> bytes:
        return f"{self.id}/{n}".encode()

    @property
    def key(self) -> bytes:
        return MANIFEST_PREFIX + self.publisher.encode()

    def dumps(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def loads(cls, value: bytes) -> Manifest | None:
        try:
            found = json.loads(value)
            return cls(
                id=str(found["id"]),
                publisher=str(found["publisher"]),
                chunks=int(found["chunks"]),
                size=int(found["size"]),
                digest=str(found["digest"]),
                saved_at=float(found["saved_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class SnapshotPublisher:
    """Publishes a file as a snapshot on `topic`, and tombstones its own previous one.

    Parameters
    ----------
    output
        The process's producer.
    topic
        The compacted snapshot topic.
    secret
        Key of the digest (b"": a plain integrity check).
    record
        A small file (in the process's state directory) that keeps the publisher's name and its
        last snapshot, so that a restarted process goes on as the same publisher and tombstones
        that snapshot at its next publication.
    """

    def __init__(self, output: Output, topic: str, secret: bytes, record: Path) -> None:
        self.output = output
        self.topic = topic
        self.secret = secret
        self.record = record
        self.previous = _remembered(record)
        self.publisher = self.previous.publisher if self.previous is not None else uuid.uuid4().hex

    def publish(self, path: Path) -> Manifest:
        """Publish the file at `path` (blocking: run it in a thread). The file is read through one
        open handle, so one renamed over it meanwhile does not tear it."""
        started = time.monotonic()
        snapshot_id = uuid.uuid4().hex
        digest = hmac.new(self.secret, digestmod=hashlib.sha256)
        size = chunks = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
                self.output.send(self.topic, chunk, f"{snapshot_id}/{chunks}".encode(), partition=0)
                chunks += 1
                size += len(chunk)
                if chunks % FLUSH_EVERY == 0:
                    self.output.flush_sync()
        manifest = Manifest(snapshot_id, self.publisher, chunks, size, digest.hexdigest(), time.time())
        self.output.send(self.topic, manifest.dumps(), manifest.key, partition=0)
        self.output.flush_sync()
        previous, self.previous = self.previous, manifest
        _remember(self.record, manifest)
        if previous is not None:
            for n in range(previous.chunks):
                self.output.send(self.topic, None, previous.chunk_key(n), partition=0)
            self.output.flush_sync()
        log.info(
            "snapshot %s published to %s: %.1f MB in %d chunks, %.1f s",
            snapshot_id, self.topic, size / 1e6, chunks, time.monotonic() - started,
        )  # fmt: skip
        return manifest


def read_snapshot(clients: KafkaClients, topic: str, secret: bytes) -> tuple[bytes, Manifest] | None:
    """The last whole snapshot on `topic` whose digest `secret` confirms, or None (blocking: it
    runs its own event loop, in a thread of its own)."""
    #: Chunk sets whose manifest is not read yet, by snapshot id: what is being published.
    pending: dict[str, dict[int, bytes]] = {}
    best: list[tuple[bytes, Manifest]] = []

    def manifest(found: Manifest) -> None:
        parts = pending.pop(found.id, {})
        if len(parts) != found.chunks:
            return  # its chunks were tombstoned (a newer one of its publisher follows) or expired
        blob = b"".join(parts[n] for n in sorted(parts))
        expected = hmac.new(secret, blob, hashlib.sha256).hexdigest()
        if len(blob) != found.size or not hmac.compare_digest(expected, found.digest):
            log.warning(
                "snapshot %s on %s does not match its digest (written with another secret, or "
                "altered): not read", found.id, topic,
            )  # fmt: skip
            return
        best[:] = [(blob, found)]

    def tombstone(snapshot_id: str, n: int) -> None:
        pending.get(snapshot_id, {}).pop(n, None)
        if best and best[0][1].id == snapshot_id:
            best.clear()  # taken back by its publisher: a newer one of theirs was read before

    def chunk(snapshot_id: str, n: int, value: bytes) -> None:
        pending.setdefault(snapshot_id, {})[n] = value

    _read(clients, topic, manifest, chunk, tombstone)
    return best[0] if best else None


def live_snapshots(clients: KafkaClients, topic: str) -> dict[str, bytes]:
    """Every snapshot whose chunks are on `topic` and not tombstoned, whole or not, by id: what
    compaction leaves of the topic (`streamrec holdings` reads them)."""
    parts: dict[str, dict[int, bytes]] = {}

    def chunk(snapshot_id: str, n: int, value: bytes) -> None:
        parts.setdefault(snapshot_id, {})[n] = value

    def tombstone(snapshot_id: str, n: int) -> None:
        parts.get(snapshot_id, {}).pop(n, None)

    _read(clients, topic, lambda _: None, chunk, tombstone)
    return {sid: b"".join(found[n] for n in sorted(found)) for sid, found in parts.items() if found}


def _read(
    clients: KafkaClients,
    topic: str,
    on_manifest: Callable[[Manifest], None],
    on_chunk: Callable[[str, int, bytes], None],
    on_tombstone: Callable[[str, int], None],
) -> None:
    """Every record of the topic's first partition, in order, to the callback for its kind."""

    def apply(_: int, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            key = record.key or b""
            if key.startswith(MANIFEST_PREFIX):
                if record.value is not None and (found := Manifest.loads(record.value)) is not None:
                    on_manifest(found)
                continue
            snapshot_id, slash, number = key.decode("utf-8", "replace").partition("/")
            if not slash or not number.isdigit():
                continue
            if record.value is None:
                on_tombstone(snapshot_id, int(number))
            else:
                on_chunk(snapshot_id, int(number), record.value)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, read_to_end(clients, [topic], [0], apply)).result()


def _remembered(record: Path) -> Manifest | None:
    try:
        return Manifest.loads(record.read_bytes())
    except OSError:
        return None


def _remember(record: Path, manifest: Manifest) -> None:
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        staged = record.with_suffix(".tmp")
        staged.write_bytes(manifest.dumps())
        staged.replace(record)
    except OSError as exc:  # only a tombstone is at stake: retention takes those chunks
        log.warning("could not remember the snapshot published in %s: %s", record, exc)
