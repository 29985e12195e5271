"""The recommender role: profiles, the index and the ranker, lists published on every event.

May import: what streams.roles may import, streams.roles.index.
"""

from __future__ import annotations
