"""The api role: the HTTP API answering from the lists and profiles the recommender publishes.

May import: what streams.roles may import, streams.roles.index, streams.roles.recommender.
"""

from __future__ import annotations
