"""Kafka for every role: client settings, consumers and producers, checkpoints, feeds, topics, the
embedded broker.

May import: streams.errors, streams.messages, streams.settings, streams.telemetry, model.
"""

from __future__ import annotations
