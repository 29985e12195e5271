"""What a deployment holds of one user, read from each store itself.

`forget` requests are answered with audit records that say what each role erased; this reads the
stores directly, to check that nothing is left: the roles' checkpoints (CF factors and what they
were learned from, the recommender's counts of the user's events and their last list), the latest
message per key of the compacted topics (profile table changelog, `profiles`, `recommendations`,
`vectors`, `reviews-encoded`), the API processes' live snapshots on `api-snapshots`, dead letters
keyed by the user, and the Qdrant point of the user.

Run it with the workers stopped (or between checkpoints, knowing that a checkpoint is up to
`checkpoint_interval_s` old): local-mode Qdrant serves one process, and a checkpoint is what a
worker holds when it stopped, and what a restarted one starts from.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streamrec.streams.errors import QdrantError
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.kafka.clients import KafkaClients, kafka_config
from streamrec.streams.kafka.snapshots import live_snapshots
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.messages import parse_review_key, vector_key
from streamrec.streams.settings import Settings

__all__ = ["Holding", "user_holdings"]


@dataclass
class Holding:
    """One store, and what it holds of the user (nothing, when `found` is empty)."""

    store: str
    found: list[str] = field(default_factory=list)
    #: What was not read, or what stays by design (a retention), in words.
    note: str = ""
    #: What is found is deleted by the store's retention, in time.
    expires: bool = False


def user_holdings(settings: Settings, user: str, timeout: float = 10.0) -> list[Holding]:
    """Every store of the deployment, and what it holds of `user`."""
    out = [*_checkpoints(settings, user)]
    out += _topics(settings, user, timeout)
    out.append(_snapshots(settings, user))
    out.append(_qdrant(settings, user))
    return out


# -- checkpoints ------------------------------------------------------------------------


def _checkpoints(settings: Settings, user: str) -> Iterator[Holding]:
    for role in ("cf", "recommender", "api"):
        saved = CheckpointStore.of(settings, role).load()
        holding = Holding(f"{role} checkpoint")
        if saved is None:
            holding.note = "no checkpoint"
        elif role == "cf":
            holding.found = saved.model["cf"].holds(user)
        else:
            holding.found = _served(saved.model, user)
        yield holding


def _served(state: dict[str, Any], user: str) -> list[str]:
    """What a recommender's checkpoint, or an API process's copy of one, holds of `user`."""
    found = []
    if user in state.get("profiles", {}):  # the API's; the recommender's are in its table
        found.append("profile")
    contributions = state["aggregates"].get("contributions")
    if contributions is not None and user in contributions:
        found.append("events counted in popularity, co-occurrence and takes")
    online = state.get("online")
    if user in state.get("latest", {}) or (online is not None and user in getattr(online, "lists", {})):
        found.append("last list")
    return found


# -- topics -----------------------------------------------------------------------------


def _topics(settings: Settings, user: str, timeout: float) -> list[Holding]:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in the stubs' exports
        AdminClient,
        ConfigResource,
    )

    topics = Topics.from_settings(settings)
    config = kafka_config(settings)
    names = set(AdminClient(config).list_topics(timeout=timeout).topics)
    key = user.encode()
    by_key: dict[str, Callable[[bytes], bool]] = {
        topics.recommendations: key.__eq__,
        topics.profiles: key.__eq__,
        topics.vectors: vector_key("user", "cf", user).__eq__,
        topics.reviews_encoded: lambda k: parse_review_key(k)[0] == user,
    }
    changelog = sorted(
        n for n in names if n.startswith(settings.topic_prefix) and n.endswith("profiles-changelog")
    )
    by_key.update({name: key.__eq__ for name in changelog})
    out = []
    for topic, match in by_key.items():
        holding = Holding(f"topic {topic} (latest per key)")
        if topic not in names:
            holding.note = "no such topic"
        else:
            live = {k: v for k, v in _latest(config, topic, timeout).items() if match(k)}
            holding.found = [f"{k.decode('utf-8', 'replace')}" for k, v in live.items() if v is not None]
        out.append(holding)
    dead = Holding(f"topic {topics.deadletter} (messages keyed by the user)")
    if topics.deadletter in names:
        dead.found = [f"offset {o}" for o, k in _keys(config, topics.deadletter, timeout) if k == key]
        admin = AdminClient(config)
        resource = ConfigResource("topic", topics.deadletter)
        with contextlib.suppress(Exception):
            entry = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
            ms = entry.get("retention.ms")
            if ms is not None and ms.value not in (None, "-1"):
                dead.note = f"kept {int(ms.value) / 86_400_000:g} days (retention.ms), then deleted"
                dead.expires = True
    out.append(dead)
    return out


def _snapshots(settings: Settings, user: str) -> Holding:
    """What the API processes' snapshots whose chunks are live hold of `user` (the operator's own
    topic: each is read without its digest, a chunk set cut short said as such)."""
    topic = Topics.from_settings(settings).api_snapshots
    holding = Holding(f"topic {topic} (each snapshot whose chunks are live)")
    clients = KafkaClients.create(settings)
    if topic not in clients.topics():
        holding.note = "no such topic"
        return holding
    for snapshot_id, blob in live_snapshots(clients, topic).items():
        try:
            state = CheckpointStore.loads(blob, f"snapshot {snapshot_id} on {topic}").model
        except (ValueError, EOFError, pickle.UnpicklingError) as exc:
            holding.found.append(f"snapshot {snapshot_id}, not whole ({exc}): it expires with the topic")
            continue
        holding.found += [f"snapshot {snapshot_id}: {what}" for what in _served(state, user)]
    return holding


def _read(config: dict[str, Any], topic: str, timeout: float) -> Iterator[Any]:
    """Every message of `topic` up to its end when read."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({**config, "group.id": "streamrec-holdings", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
            for p in partitions
        }
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        idle = 0
        while todo and idle < int(timeout / 0.2):
            batch = consumer.consume(500, 0.2)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error():
                    continue
                yield msg
                if (msg.offset() or 0) + 1 >= ends[msg.partition()]:
                    todo.discard(msg.partition())
    finally:
        consumer.close()


def _latest(config: dict[str, Any], topic: str, timeout: float) -> dict[bytes, bytes | None]:
    """The latest value per key (None: a tombstone), as compaction will leave the topic."""
    return {msg.key(): msg.value() for msg in _read(config, topic, timeout) if msg.key() is not None}


def _keys(config: dict[str, Any], topic: str, timeout: float) -> list[tuple[int, bytes | None]]:
    return [(msg.offset(), msg.key()) for msg in _read(config, topic, timeout)]


# -- qdrant -----------------------------------------------------------------------------


def _qdrant(settings: Settings, user: str) -> Holding:
    from streamrec.streams.vectors.qdrant import point_id
    from streamrec.streams.vectors.sink import open_qdrant

    holding = Holding("qdrant (user points)")
    if settings.qdrant_in_memory:
        holding.note = "in memory: gone with the process"
        return holding
    try:
        client = open_qdrant(settings)
    except QdrantError as exc:
        holding.note = f"not read: {exc}"
        return holding
    try:
        users = settings.topic("users")
        for collection in client.get_collections().collections:
            if collection.name == users or collection.name.startswith(f"{users}-t"):
                if client.retrieve(collection.name, [point_id(collection.name, user)]):
                    holding.found.append(collection.name)
    finally:
        client.close()
    return holding
