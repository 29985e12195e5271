"""A Kafka producer that outlives its fatal errors.

librdkafka's idempotent producer stops for good on a *fatal* error, e.g. when a
broker answers with a sequence number it did not expect after a restart: every
later `produce()` and `flush()` raises, and what it still held is failed. The
remedy librdkafka documents is a new producer instance; this class makes that
switch itself and sends again, in their order, the messages the old one had not
delivered. It keeps each message until the brokers acknowledge it, so none is
missed, even one whose delivery report was lost with the failing producer. A
message the broker had in fact written before the error may then appear twice
in its topic: delivery stays at least once, never less.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer

__all__ = ["RecoveringProducer"]

log = logging.getLogger(__name__)

#: Longest a flush waits in librdkafka before it checks whether its own messages are through.
FLUSH_ROUND_S = 0.05
#: How long a failed producer gets to hand back delivery reports before it is dropped.
DRAIN_S = 2.0


class _Pending(NamedTuple):
    generation: int
    topic: str
    value: bytes | None
    key: bytes | str | None
    partition: int | None
    timestamp_ms: int | None


def _forward_error(owner: weakref.ref[RecoveringProducer], generation: int, err: KafkaError) -> None:
    producer = owner()
    if producer is not None:
        producer._on_error(generation, err)


class RecoveringProducer:
    """A confluent-kafka `Producer` that replaces itself after a fatal error.

    Parameters
    ----------
    config
        librdkafka configuration; `error_cb` is taken over.
    on_delivered
        Called with each message the brokers acknowledged.
    on_replaced
        Called with the reason each time the producer is replaced.
    """

    def __init__(
        self,
        config: dict[str, Any],
        on_delivered: Callable[[Message], None] | None = None,
        on_replaced: Callable[[str], None] | None = None,
    ) -> None:
        self._config = {k: v for k, v in config.items() if k != "error_cb"}
        self._on_delivered = on_delivered
        self._on_replaced = on_replaced
        self._lock = threading.RLock()
        self._generation = 0
        self._fatal: str | None = None
        self._ids = itertools.count()
        #: One past the last message id handed out.
        self._issued = 0
        #: Every message not yet acknowledged, by the order it was produced in.
        self._pending: dict[int, _Pending] = {}
        #: Messages that failed: (producer generation, id, error, message).
        self._failed: list[tuple[int, int, KafkaError, Message]] = []
        self._producer = self._new_producer()

    @property
    def replacements(self) -> int:
        """How many times a fatal error made it start a new producer."""
        return self._generation

    def __len__(self) -> int:
        return len(self._pending)

    def _new_producer(self) -> Producer:
        # Through a weak reference: the producer must not keep this object (and itself) alive.
        on_error = functools.partial(_forward_error, weakref.ref(self), self._generation)
        return Producer({**self._config, "error_cb": on_error})

    def _on_error(self, generation: int, err: KafkaError) -> None:
        if err.fatal() and generation == self._generation:
            self._fatal = err.str()
        else:
            log.debug("producer: %s", err)

    def _on_delivery(self, generation: int, message_id: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._pending.pop(message_id, None)
            if self._on_delivered is not None:
                self._on_delivered(msg)
        else:
            self._failed.append((generation, message_id, err, msg))

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        """Queue one message; waits while the local queue is full (`on_full` is told), never drops."""
        message_id = next(self._ids)
        self._issued = message_id + 1
        while True:
            generation = self._generation
            self._pending[message_id] = _Pending(generation, topic, value, key, partition, timestamp_ms)
            try:
                self._send(message_id, self._pending[message_id])
                break
            except BufferError:
                # Not queued: out of the pending set while we wait, or a producer replaced
                # meanwhile would send it again along with what it had queued.
                del self._pending[message_id]
                if on_full is not None:
                    on_full()
                self.poll(0.1)
            except KafkaException as exc:
                del self._pending[message_id]
                self._fail_over(exc, generation)  # raises unless fatal: refused outright
        self.poll(0)

    def _send(self, message_id: int, m: _Pending) -> None:
        kwargs: dict[str, Any] = {}
        if m.partition is not None:
            kwargs["partition"] = m.partition
        if m.timestamp_ms is not None:
            kwargs["timestamp"] = m.timestamp_ms
        report = functools.partial(self._on_delivery, m.generation, message_id)
        self._producer.produce(m.topic, m.value, m.key, on_delivery=report, **kwargs)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports and errors for up to `timeout` seconds."""
        generation = self._generation
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            self._fail_over(exc, generation)
        self._recover_if_failed(generation)

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for every message produced before this call to be
        acknowledged or failed; returns how many are still neither.

        Messages other threads produce meanwhile are not waited for: with a steady producer
        beside it the queue is never empty, and a flush that waited for that would not end.
        """
        deadline = time.monotonic() + timeout
        horizon = self._issued
        while True:
            generation = self._generation
            try:
                # Short rounds: librdkafka's flush returns only once the whole queue is empty.
                self._producer.flush(min(FLUSH_ROUND_S, max(0.0, deadline - time.monotonic())))
            except KafkaException as exc:
                self._fail_over(exc, generation)
            except SystemError as exc:
                # confluent-kafka's flush goes on serving callbacks after raising a fatal error,
                # which breaks them with this: the producer is gone either way.
                if generation == self._generation:
                    self._fatal = f"the producer broke during a flush ({exc})"
                # confluent-kafka keeps hold of this exception: let it not keep our frames.
                exc.__traceback__ = exc.__context__ = None
            self._recover_if_failed(generation)
            if generation != self._generation:
                continue  # replaced: wait for what was sent again
            failed = {f[1] for f in self._failed if f[0] == generation}
            left = sum(1 for i in list(self._pending) if i < horizon and i not in failed)
            if left == 0 or time.monotonic() >= deadline:
                return left

    def take_failed(self) -> list[tuple[KafkaError, Message]]:
        """Messages that could not be delivered (after a fatal error, those are sent again)."""
        if not self._failed:
            return []
        with self._lock:
            # A failure in a replaced producer is not final: the message was sent again.
            failed = [f for f in self._failed if f[0] == self._generation]
            self._failed = []
            for _, message_id, _, _ in failed:
                self._pending.pop(message_id, None)
        return [(err, msg) for _, _, err, msg in failed]

    def _fail_over(self, exc: KafkaException, generation: int) -> None:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        # A produce into a producer already failed fatally raises a local error whose code says
        # so (`_FATAL`) while its `fatal()` flag is unset: the producer is gone either way.
        if err is None or not (err.fatal() or err.code() == KafkaError._FATAL):
            raise exc
        if generation == self._generation:
            self._fatal = err.str()
        self._recover_if_failed(generation)

    def _recover_if_failed(self, generation: int) -> None:
        if self._fatal is None or generation != self._generation:
            return
        with self._lock:
            if generation != self._generation:
                return  # another thread replaced it meanwhile
            old, reason = self._producer, self._fatal
            # Delivery reports the old producer can still give spare needless repeats.
            old.purge(in_queue=True, in_flight=True, blocking=False)
            deadline = time.monotonic() + DRAIN_S
            while len(old) > 0 and time.monotonic() < deadline:
                try:
                    old.poll(0.1)
                except (KafkaException, SystemError):
                    pass
            self._generation += 1
            self._fatal = None
            self._failed = []
            self._producer = self._new_producer()
            stale = sorted(i for i, m in self._pending.items() if m.generation < self._generation)
            for message_id in stale:
                message = self._pending[message_id]._replace(generation=self._generation)
                self._pending[message_id] = message
                while True:
                    try:
                        self._send(message_id, message)
                        break
                    except BufferError:
                        self._producer.poll(0.1)
        log.warning(
            "the Kafka producer failed for good (%s); started a new one and sent again the %d "
            "message(s) it had not delivered",
            reason,
            len(stale),
        )
        if self._on_replaced is not None:
            self._on_replaced(reason)
