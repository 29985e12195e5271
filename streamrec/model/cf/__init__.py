"""Collaborative filtering: online matrix factorization, CF vectors generated from content, EASE pulled
towards text, and the CF worker's learning and fencing.

May import: model.base, model.errors, model.events, model.index, model.text, model.users.
"""

from __future__ import annotations
