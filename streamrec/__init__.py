"""streamrec: an event-streaming, real-time recommender; `model` is what its workers run, `eval`
measures it, `learn` trains its encoder, `streams` wires it to Kafka, Qdrant and Prometheus.

May import: nothing.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
