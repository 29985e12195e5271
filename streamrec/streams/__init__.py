"""The wiring: faust workers and their roles, Kafka, Qdrant, Prometheus, the command line.

May import: model.
"""

from __future__ import annotations
