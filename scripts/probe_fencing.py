"""What a Kafka-compatible broker fences, measured: the three mechanisms Kafka's exactly-once rests on.

    python scripts/probe_fencing.py                 # the embedded broker (tansu), started here
    python scripts/probe_fencing.py HOST:PORT       # any broker

1. Aborted transactions: a `read_committed` consumer must not see a transaction that was aborted.
2. Producer epochs: once a second producer with the same `transactional.id` has initialized, the
   first (a "zombie") must fail to commit its transaction, and what it wrote must stay invisible.
3. Group generations: a transactional offset commit carrying a generation the group has moved
   past must be rejected.

streamrec's CF workers do not rely on any of these (see docs/reliability.md);
this probe says which a given broker offers.
"""

from __future__ import annotations

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamrec.streams.kafka.broker import EmbeddedBroker


def _read(bootstrap: str, topic: str, isolation: str, until: bytes, seconds: float = 20.0) -> list[bytes]:
    """Every record of the topic's partition 0 a consumer with `isolation` gets, up to `until`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"probe-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + seconds
    while until not in out and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            out.append(msg.value())
    consumer.close()
    if until not in out:
        raise RuntimeError(f"{isolation} consumer did not read {until!r} within {seconds:.0f}s: {out}")
    return out


def _producer(bootstrap: str, txn_id: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 10_000}
    )
    producer.init_transactions(15)
    return producer


def probe(bootstrap: str) -> dict[str, str]:
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    found: dict[str, str] = {}

    # 1. An aborted transaction, then a committed one.
    producer = _producer(bootstrap, f"{topic}-a")
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.flush(10)
    producer.abort_transaction(15)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(15)
    seen = _read(bootstrap, topic, "read_committed", until=b"committed")
    found["read_committed hides an aborted transaction"] = (
        f"yes (read {seen})" if b"aborted" not in seen else f"NO: a read_committed consumer read {seen}"
    )

    # 2. A zombie producer: a second one with the same transactional.id initializes while the first
    # has a transaction open.
    txn_id = f"{topic}-z"
    zombie = _producer(bootstrap, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie")
    zombie.flush(10)
    successor = _producer(bootstrap, txn_id)
    try:
        zombie.commit_transaction(15)
        outcome = "NO: the zombie's commit succeeded"
    except KafkaException as exc:
        err = exc.args[0]
        fenced = err.code() in (-144, 90) or "fenced" in err.str().lower()  # _FENCED, PRODUCER_FENCED
        outcome = ("yes" if fenced else "not as fencing") + f": {err.name()} ({err.code()}) {err.str()}"
    successor.begin_transaction()
    successor.produce(topic, b"successor")
    successor.commit_transaction(15)
    seen = _read(bootstrap, topic, "read_committed", until=b"successor")
    found["a zombie producer is fenced"] = outcome
    found["the zombie's records stay invisible"] = (
        "yes" if b"zombie" not in seen else f"NO: a read_committed consumer read {seen}"
    )

    # 3. A transactional offset commit with a generation the group has moved past.
    group = f"{topic}-g"
    first = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
    first.subscribe([topic])
    deadline = time.monotonic() + 30
    while not first.assignment() and time.monotonic() < deadline:
        first.poll(0.2)
    stale = first.consumer_group_metadata()
    second = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
    second.subscribe([topic])
    first.close()  # leaves the group: the second joins a new generation
    deadline = time.monotonic() + 30
    while not second.assignment() and time.monotonic() < deadline:
        second.poll(0.2)
    producer = _producer(bootstrap, f"{topic}-o")
    producer.begin_transaction()
    try:
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 1)], stale, 15)
        producer.commit_transaction(15)
        found["an offset commit of a past generation is rejected"] = "NO: accepted"
    except KafkaException as exc:
        err = exc.args[0]
        found["an offset commit of a past generation is rejected"] = f"yes: {err.name()} {err.str()}"
    second.close()
    return found


def main() -> None:
    broker = None
    if len(sys.argv) > 1:
        bootstrap = sys.argv[1]
    else:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
    try:
        for what, answer in probe(bootstrap).items():
            print(f"{what}: {answer}")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
