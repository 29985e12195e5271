"""The producer survives librdkafka's fatal errors, on a real broker behind a fault-injecting proxy."""

from __future__ import annotations

import collections
import gc
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamrec.streams.errors import BrokerError
from streamrec.streams.kafka.broker import EmbeddedBroker, free_port
from streamrec.streams.kafka.output import Output
from streamrec.streams.replay import Replayer
from tests.faults import INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, FaultProxy

pytestmark = pytest.mark.broker

N = 600
Proxied = tuple[FaultProxy, dict[str, str]]


@pytest.fixture
def proxied() -> Iterator[Proxied]:
    """A broker whose clients all go through a `FaultProxy`."""
    port = free_port()
    broker = EmbeddedBroker(advertise=f"127.0.0.1:{port}").start()
    proxy = FaultProxy(broker.bootstrap, port)
    config = {"bootstrap.servers": proxy.address}
    admin = AdminClient(config)
    admin.create_topics([NewTopic("t", 3, 1)])["t"].result(timeout=30)
    try:
        yield proxy, config
    finally:
        gc.collect()  # a client caught in an exception's cycle would retry a broker gone until the next GC
        proxy.close()
        broker.stop()


def read_all(config: dict[str, str], expected: int) -> list[tuple[int, bytes]]:
    consumer = Consumer({**config, "group.id": "check", "enable.auto.commit": False})
    consumer.assign([TopicPartition("t", p, OFFSET_BEGINNING) for p in range(3)])
    got: list[tuple[int, bytes]] = []
    for _ in range(100):
        got += [(m.partition(), m.value()) for m in consumer.consume(1000, 0.2) if not m.error()]
        if len(got) >= expected:
            break
    consumer.close()
    return got


def test_the_proxy_makes_a_plain_idempotent_producer_fail_for_good(
    proxied: Proxied,
) -> None:
    """What the test below relies on: this broker answer is fatal to librdkafka."""
    proxy, config = proxied
    producer = Producer({**config, "enable.idempotence": True})
    producer.produce("t", b"before")
    assert producer.flush(10) == 0
    proxy.fail_produce(OUT_OF_ORDER_SEQUENCE_NUMBER)
    producer.produce("t", b"after")
    with pytest.raises(KafkaException) as info:
        producer.flush(10)
    assert info.value.args[0].fatal()


def test_output_replaces_a_failed_producer_and_loses_nothing(proxied: Proxied) -> None:
    proxy, config = proxied
    output = Output(config)
    for i in range(N // 2):
        output.send("t", b"%d" % i, key=f"k{i % 17}")
    output.flush_sync(timeout=30)
    proxy.fail_produce(OUT_OF_ORDER_SEQUENCE_NUMBER)
    for i in range(N // 2, N):
        output.send("t", b"%d" % i, key=f"k{i % 17}")
    output.flush_sync(timeout=30)
    assert proxy.injected == 1
    assert output._producer.replacements == 1
    # ...and it keeps working afterwards.
    output.send("t", b"%d" % N, key="k0")
    output.close()

    got = read_all(config, N + 1)
    values = [int(v) for _, v in got]
    assert set(values) == set(range(N + 1)), "every message arrives"
    # At least once: a batch the broker wrote before answering with the error comes again, but
    # per partition the first copies keep the order they were sent in.
    by_partition = collections.defaultdict(list)
    for partition, value in got:
        if int(value) not in by_partition[partition]:
            by_partition[partition].append(int(value))
    for firsts in by_partition.values():
        assert firsts == sorted(firsts)


def test_replayer_rides_out_a_fatal_producer_error(proxied: Proxied) -> None:
    proxy, config = proxied
    replayer = Replayer(config)
    proxy.fail_produce(OUT_OF_ORDER_SEQUENCE_NUMBER)
    replayer.replay([("t", {"n": i}, f"k{i}") for i in range(N)])
    replayer.flush(timeout=30)
    assert proxy.injected == 1 and replayer.errors == []
    assert {d.key for d in replayer.delivered} == {f"k{i}" for i in range(N)}


def test_a_failure_that_is_not_fatal_is_reported_not_hidden(proxied: Proxied) -> None:
    """A permanent error for some messages fails the flush, so the worker does not commit past them."""
    proxy, config = proxied
    output = Output(config)
    output.send("t", b"warm-up")
    output.flush_sync(timeout=30)
    proxy.fail_produce(INVALID_PRODUCER_EPOCH)
    output.send("t", b"rejected")
    with pytest.raises(BrokerError, match="could not be delivered"):
        output.flush_sync(timeout=30)
    assert output._producer.replacements == 0
    output.close()


def test_a_flush_waits_for_what_came_before_it_not_for_a_producer_beside_it(proxied: Proxied) -> None:
    """Roles in one worker share the producer: one flushes while another keeps producing."""
    _, config = proxied
    output = Output(config)
    stop = threading.Event()
    sent_beside = [0]

    def steady() -> None:
        while not stop.is_set():
            output.send("t", b"beside %d" % sent_beside[0])
            sent_beside[0] += 1
            time.sleep(0.0005)

    beside = threading.Thread(target=steady)
    beside.start()
    try:
        for n in range(30):
            output.send("t", b"mine %d" % n)
            output.flush_sync(timeout=30)  # raises if it reports anything undelivered
            pending = [p.value for p in list(output._producer._pending.values())]
            # What came before the flush is acknowledged; what the other role sent after may not be.
            assert not any(v is not None and v.startswith(b"mine") for v in pending), pending
    finally:
        stop.set()
        beside.join()
    assert sent_beside[0] > 30, "the other role kept producing through every flush"
    output.close()
    got = {v for _, v in read_all(config, 30 + sent_beside[0])}
    assert {b"mine %d" % n for n in range(30)} <= got


def test_a_produce_refused_by_a_producer_already_failed_replaces_it() -> None:
    """confluent-kafka refuses a produce into a producer that failed fatally with a local error
    whose code is `_FATAL` and whose `fatal()` flag is unset: it is a failed producer all the same
    (a timing the proxy test above reaches now and then: the failure seen at a produce, not a poll)."""
    from confluent_kafka import KafkaError

    from streamrec.streams.kafka.producer import RecoveringProducer

    refused = KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error")
    assert not refused.fatal()  # why the code is read too
    producer = RecoveringProducer({"bootstrap.servers": f"127.0.0.1:{free_port()}"})
    producer._fail_over(KafkaException(refused), generation=0)
    assert producer.replacements == 1
    with pytest.raises(KafkaException):  # any other error still reaches the caller
        producer._fail_over(KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "x")), generation=1)
