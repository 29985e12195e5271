"""The roles a worker process can run: cf, encoder, recommender."""

from __future__ import annotations
