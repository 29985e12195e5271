"""Wiring: faust agents, Kafka, Qdrant, Prometheus and the command line."""

from __future__ import annotations
