"""The roles a worker process runs, one package each: cf, encoder, recommender, index, api.

May import: streams.context, streams.errors, streams.forked, streams.kafka, streams.messages,
streams.settings, streams.telemetry, streams.vectors, model.
"""

from __future__ import annotations
