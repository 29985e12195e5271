"""The recommender's state and what it does with each event: apply it once, rank, answer once.

May import: model.base, model.errors, model.events, model.index, model.metrics, model.text, model.users,
model.cf, model.ranking.
"""

from __future__ import annotations
