"""A state's snapshot on a compacted topic, so that a process with no disk of its own starts from it.

A snapshot is a blob (a checkpoint file's bytes) cut into chunks, each a record keyed
`<snapshot id>/<n>`, then a manifest keyed `manifest` that names the snapshot, its chunk count,
its size and its digest. All of it goes to the topic's first partition, in order, so a manifest
always follows its chunks. Once its manifest is acknowledged, the publisher tombstones the chunks
of its own previous snapshot: compaction then keeps one manifest (the latest, whichever process
wrote it) and the chunks of each publisher's latest snapshot. Chunks a process left when it went
for good expire with the topic's retention (`TOPIC_CONFIGS`), which every live publisher outruns.

A reader takes the latest manifest whose chunks are all there and whose digest matches; a
publication cut short (a crash between its chunks) has no manifest and is never read, and one
whose chunks a later tombstone took is passed over for the one before it.

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
from collections.abc import Sequence
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
MANIFEST_KEY = b"manifest"


@dataclass(frozen=True)
class Manifest:
    """What a snapshot is: the value of a `manifest` record."""

    id: str
    chunks: int
    size: int
    #: HMAC-SHA256 of the blob, hex.
    digest: str
    saved_at: float

    def chunk_key(self, n: int) -> bytes:
        return f"{self.id}/{n}".encode()

    def dumps(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def loads(cls, value: bytes) -> Manifest | None:
        try:
            found = json.loads(value)
            return cls(
                id=str(found["id"]),
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
        A small file where the last snapshot published is remembered, so that a restarted
        process tombstones it at its next publication.
    """

    def __init__(self, output: Output, topic: str, secret: bytes, record: Path) -> None:
        self.output = output
        self.topic = topic
        self.secret = secret
        self.record = record
        self.previous = _remembered(record)

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
        manifest = Manifest(snapshot_id, chunks, size, digest.hexdigest(), time.time())
        self.output.send(self.topic, manifest.dumps(), MANIFEST_KEY, partition=0)
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
    """The latest whole snapshot on `topic` whose digest `secret` confirms, or None (blocking:
    it runs its own event loop, in a thread of its own)."""
    chunks, manifests = _read(clients, topic)
    for manifest in reversed(manifests):
        parts = [chunks.get(manifest.chunk_key(n)) for n in range(manifest.chunks)]
        if any(p is None for p in parts):
            continue  # a later publisher's tombstones took it: an older one follows
        blob = b"".join(p for p in parts if p is not None)
        expected = hmac.new(secret, blob, hashlib.sha256).hexdigest()
        if len(blob) != manifest.size or not hmac.compare_digest(expected, manifest.digest):
            log.warning(
                "snapshot %s on %s does not match its digest (written with another secret, or "
                "altered): not read", manifest.id, topic,
            )  # fmt: skip
            continue
        return blob, manifest
    return None


def live_snapshots(clients: KafkaClients, topic: str) -> dict[str, bytes]:
    """Every snapshot whose chunks are on `topic` and not tombstoned, whole or not, by id: what
    compaction leaves of the topic (`streamrec holdings` reads them)."""
    chunks, _ = _read(clients, topic)
    parts: dict[str, dict[int, bytes]] = {}
    for key, value in chunks.items():
        snapshot_id, _, n = key.decode("utf-8", "replace").partition("/")
        if n.isdigit():
            parts.setdefault(snapshot_id, {})[int(n)] = value
    return {sid: b"".join(found[n] for n in sorted(found)) for sid, found in parts.items()}


def _read(clients: KafkaClients, topic: str) -> tuple[dict[bytes, bytes], list[Manifest]]:
    """The topic's live chunks by key, and its manifests in the order written."""
    chunks: dict[bytes, bytes] = {}
    manifests: list[Manifest] = []

    def apply(_: int, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            key = record.key or b""
            if key == MANIFEST_KEY:
                if record.value is not None and (manifest := Manifest.loads(record.value)) is not None:
                    manifests.append(manifest)
            elif record.value is None:
                chunks.pop(key, None)
            else:
                chunks[key] = record.value

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, read_to_end(clients, [topic], [0], apply)).result()
    return chunks, manifests


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
