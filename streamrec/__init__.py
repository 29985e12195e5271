"""streamrec: an event-streaming, real-time recommender.

`streamrec.model` holds the recommendation logic and does no I/O with Kafka or
Prometheus; `streamrec.streams` wires it to Kafka (faust-streaming agents),
Qdrant and Prometheus.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
