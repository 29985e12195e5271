"""A Kafka producer that outlives its fatal errors.

librdkafka's idempotent producer stops for good on a *fatal* error, e.g. when a
broker answers with a sequence number it did not expect after a restart: every
later `produce()` and `flush()` raises, and what it still held is failed. The
remedy librdkafka documents is a new producer instance; this class makes that
switch itself and sends again, in their order, the messages the old one had not
delivered. A message the broker had in fact written before the error may then
appear twice in its topic: delivery stays at least once, never less.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, KafkaException, Message, Producer

__all__ = ["RecoveringProducer"]

log = logging.getLogger(__name__)

#: How long a failed producer gets to hand back what it held before it is dropped.
DRAIN_S = 5.0


class RecoveringProducer:
    """A confluent-kafka `Producer` that replaces itself after a fatal error.

    Parameters
    ----------
    config
        librdkafka configuration; `error_cb` is taken over.
    on_delivered
        Called with each message the brokers acknowledged.
    on_replaced
        Called with the fatal error each time the producer is replaced.
    """

    def __init__(
        self,
        config: dict[str, Any],
        on_delivered: Callable[[Message], None] | None = None,
        on_replaced: Callable[[KafkaError], None] | None = None,
    ) -> None:
        self._config = {k: v for k, v in config.items() if k != "error_cb"}
        self._on_delivered = on_delivered
        self._on_replaced = on_replaced
        self._lock = threading.RLock()
        self._generation = 0
        self._fatal: KafkaError | None = None
        #: Messages that failed, with the generation of the producer they failed in.
        self._failed: list[tuple[int, KafkaError, Message]] = []
        self._producer = self._new_producer()

    @property
    def replacements(self) -> int:
        """How many times a fatal error made it start a new producer."""
        return self._generation

    def __len__(self) -> int:
        return len(self._producer) + len(self._failed)

    def _new_producer(self) -> Producer:
        return Producer({**self._config, "error_cb": functools.partial(self._on_error, self._generation)})

    def _on_error(self, generation: int, err: KafkaError) -> None:
        if err.fatal() and generation == self._generation:
            self._fatal = err
        else:
            log.debug("producer: %s", err)

    def _on_delivery(self, generation: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            if self._on_delivered is not None:
                self._on_delivered(msg)
            return
        with self._lock:
            self._failed.append((generation, err, msg))

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
        kwargs: dict[str, Any] = {}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            producer, generation = self._producer, self._generation
            try:
                producer.produce(
                    topic,
                    value,
                    key,
                    on_delivery=functools.partial(self._on_delivery, generation),
                    **kwargs,
                )
                break
            except BufferError:
                if on_full is not None:
                    on_full()
                self.poll(0.1)
            except KafkaException as exc:
                self._raise_unless_fatal(exc, generation)
        self.poll(0)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports and errors for up to `timeout` seconds."""
        generation = self._generation
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            self._raise_unless_fatal(exc, generation)
        self._recover_if_failed(generation)

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for everything queued; returns how many are still queued.

        It polls rather than calling librdkafka's flush: on a fatal error confluent-kafka's
        flush goes on serving callbacks with the error pending, which breaks them.
        """
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            self.poll(min(0.1, max(0.0, deadline - time.monotonic())))
            if generation != self._generation:
                continue  # replaced: wait for what was sent again
            remaining = len(self._producer)
            if remaining == 0 or time.monotonic() >= deadline:
                return remaining

    def take_failed(self) -> list[tuple[KafkaError, Message]]:
        """Messages that could not be delivered (a fatal error excepted: those are sent again)."""
        if not self._failed:
            return []
        with self._lock:
            self._resend_stale()
            failed, self._failed = self._failed, []
        return [(err, msg) for _, err, msg in failed]

    def _raise_unless_fatal(self, exc: KafkaException, generation: int) -> None:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is None or not err.fatal():
            raise exc
        if generation == self._generation:
            self._fatal = err
        self._recover_if_failed(generation)

    def _recover_if_failed(self, generation: int) -> None:
        if self._fatal is None or generation != self._generation:
            return
        with self._lock:
            if generation != self._generation:
                return  # another thread replaced it meanwhile
            old, err = self._producer, self._fatal
            assert err is not None
            # What the old producer still holds comes back as failed delivery reports.
            old.purge(in_queue=True, in_flight=True, blocking=False)
            deadline = time.monotonic() + DRAIN_S
            while len(old) > 0 and time.monotonic() < deadline:
                try:
                    old.poll(0.1)
                except KafkaException:
                    pass
            self._generation += 1
            self._fatal = None
            self._producer = self._new_producer()
            resent = self._resend_stale()
        log.warning(
            "the Kafka producer failed for good (%s); started a new one and sent again the %d "
            "message(s) it had not delivered",
            err.str(),
            resent,
        )
        if self._on_replaced is not None:
            self._on_replaced(err)

    def _resend_stale(self) -> int:
        """Send again, in order, what failed in a replaced producer. Call with the lock held."""
        stale = [(g, e, m) for g, e, m in self._failed if g < self._generation]
        if not stale:
            return 0
        self._failed = [(g, e, m) for g, e, m in self._failed if g == self._generation]
        for _, _, msg in stale:
            kind, ts = msg.timestamp()
            while True:
                try:
                    self._producer.produce(
                        msg.topic(),
                        msg.value(),
                        msg.key(),
                        partition=msg.partition(),
                        timestamp=ts if kind == TIMESTAMP_CREATE_TIME else 0,
                        on_delivery=functools.partial(self._on_delivery, self._generation),
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
        return len(stale)
