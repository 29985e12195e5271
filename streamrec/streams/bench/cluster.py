"""The system under test: one broker, and a stack of workers per measurement.

Each measurement gets topics and consumer groups of its own (a topic prefix), so that
workers of one never see the events of another, and a data directory of its own.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from streamrec.streams.errors import WorkerError
from streamrec.streams.kafka.broker import EmbeddedBroker
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.consumer import own_group
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Delivered
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack, WorkerProcess

__all__ = ["Cluster", "Phase", "end_offsets", "metric_total", "wait_until"]

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_total(worker: WorkerProcess, name: str, **labels: str) -> float:
    """Sum of a metric's series whose labels include `labels` (0 when the worker is away)."""
    try:
        series = worker.metric(name)
    except OSError:
        return 0.0
    total = 0.0
    for label_text, value in series.items():
        if not label_text.startswith("{") and label_text:
            continue  # another metric whose name starts with this one
        found = dict(_LABEL.findall(label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            total += value
    return total


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.05,
    workers: Sequence[WorkerProcess] = (),
) -> Any:
    """Poll `predicate` until truthy; fail early if a worker died, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for worker in workers:
            code = worker.process.poll()
            if code is not None:
                log = f" (log: {worker.log_file.name})" if worker.log_file else ""
                raise WorkerError(
                    f"worker {','.join(worker.roles)} exited with code {code} while waiting for {what}{log}"
                )
        if time.monotonic() > deadline:
            raise WorkerError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def end_offsets(delivered: Iterable[Delivered], topic: str) -> dict[int, int]:
    """Next offset after the last event delivered to each partition of `topic`."""
    ends: dict[int, int] = {}
    for d in delivered:
        if d.topic == topic:
            ends[d.partition] = max(ends.get(d.partition, 0), d.offset + 1)
    return ends


class Phase:
    """One measurement's settings, topics and workers."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.settings = cluster.settings.model_copy(
            update={
                "topic_prefix": f"{cluster.run_id}-{name}-",
                "kafka_bootstrap": cluster.bootstrap,
                # The wait that fits the cluster's broker, embedded or not.
                "kafka_fetch_max_wait_ms": cluster.settings.fetch_max_wait_ms,
                "data_dir": cluster.data_dir / name,
                "metrics_port": 0,
            }
        )
        self.topics = Topics.from_settings(self.settings)
        self.config = kafka_config(self.settings)
        self.stack = Stack(self.settings, log_dir=self.settings.data_dir / "logs")
        self.stack.start_broker()  # with a bootstrap given, this only creates the topics
        self._admin = AdminClient(self.config)
        self._workers: dict[tuple[str, ...], WorkerProcess] = {}

    def worker(self, roles: Sequence[str]) -> WorkerProcess:
        """The worker running `roles`, started now unless it already is."""
        key = tuple(sorted(roles))
        if key not in self._workers:
            self._workers[key] = self.stack.start_worker(key, None, **self.cluster.worker_env)
        return self._workers[key]

    def wait_ready(self, timeout: float = 300.0) -> float:
        return self.stack.wait_ready(timeout=timeout)

    @property
    def cf_group(self) -> str:
        """The CF role's own consumer group, whatever other roles share its process."""
        return own_group(self.settings, "cf")

    @property
    def encoder_group(self) -> str:
        """The encoder role's own consumer group."""
        return own_group(self.settings, "encoder")

    @property
    def recommender_group(self) -> str:
        """The recommender role's own consumer group."""
        return own_group(self.settings, "recommender")

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The group's committed offsets (-1 where none)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=5)
        out = {}
        for future in futures.values():
            for tp in future.result().topic_partitions:
                out[tp.partition] = tp.offset
        return out

    def caught_up(self, group: str, topic: str, ends: dict[int, int]) -> bool:
        """Whether `group` has committed every partition of `topic` up to `ends`."""
        if not ends:
            return True
        try:
            committed = self.committed(group, topic, ends)
        except Exception:  # noqa: BLE001 - a group still joining answers with an error; poll again
            return False
        return all(committed.get(p, -1) >= end for p, end in ends.items())

    def high_watermarks(self, topic: str) -> dict[int, int]:
        """The end offset of every partition of `topic` that holds anything."""
        from confluent_kafka import Consumer

        consumer = Consumer({**self.config, "group.id": "streamrec-bench"})
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
            }
        finally:
            consumer.close()
        return {p: end for p, end in ends.items() if end > 0}

    def settle(self, group: str, topics: Iterable[str], timeout: float) -> bool:
        """Wait until `group` has committed everything in `topics`; False if it did not in time.

        A faust worker stopped with events still unacknowledged waits for them on its way
        out; one whose every event is committed stops at once.
        """
        ends = {topic: self.high_watermarks(topic) for topic in topics}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.caught_up(group, topic, topic_ends) for topic, topic_ends in ends.items()):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self.stack.stop()
        self._workers.clear()


class Cluster:
    """The broker (embedded unless `settings.kafka_bootstrap` is set) shared by every phase."""

    def __init__(self, settings: Settings, data_dir: Path, worker_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.worker_env = worker_env or {}
        self.run_id = f"bench{uuid.uuid4().hex[:6]}"
        self.broker: EmbeddedBroker | None = None
        self.phases: list[Phase] = []

    @property
    def bootstrap(self) -> str:
        if self.settings.kafka_bootstrap:
            return self.settings.kafka_bootstrap
        if self.broker is None:
            raise WorkerError("the benchmark's broker is not started")
        return self.broker.bootstrap

    def start(self) -> Cluster:
        if not self.settings.kafka_bootstrap and self.broker is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.broker = EmbeddedBroker(log_path=self.data_dir / "broker.log").start()
        return self

    def phase(self, name: str) -> Phase:
        """The phase called `name`, created on first use."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        phase = Phase(self, name)
        self.phases.append(phase)
        return phase

    def stop(self) -> None:
        for phase in reversed(self.phases):
            phase.stop()
        self.phases.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
