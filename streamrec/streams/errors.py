"""Errors raised by the wiring.

StreamrecError (streamrec.model.errors)
 └── InfrastructureError   something outside streamrec failed
      ├── BrokerError      Kafka unreachable, topics not creatable, embedded broker failed
      ├── QdrantError      Qdrant unreachable or its local storage locked
      └── WorkerError      a worker process failed to start or stop
"""

from __future__ import annotations

from streamrec.model.errors import StreamrecError

__all__ = ["BrokerError", "InfrastructureError", "QdrantError", "StateInUseError", "WorkerError"]


class InfrastructureError(StreamrecError):
    """Something outside streamrec failed; retried where it can be, reported where not."""


class BrokerError(InfrastructureError):
    """Kafka is unreachable, a topic cannot be created, or the embedded broker failed."""


class QdrantError(InfrastructureError):
    """Qdrant is unreachable, or its local storage is locked by another process."""


class WorkerError(InfrastructureError):
    """A worker process failed to start, become ready, or stop."""


class StateInUseError(StreamrecError):
    """A role's state directory is held by another process that is still running."""
