"""Qdrant as the durable, queryable view of item and user vectors.

May import: streams.errors, streams.settings, streams.telemetry, model.
"""

from __future__ import annotations
