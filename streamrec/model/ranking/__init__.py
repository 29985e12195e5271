"""The hybrid ranker: candidates, popularity and co-occurrence, the learned blend, MMR, rules and reasons.

May import: model.base, model.errors, model.index, model.text, model.users, model.cf.
"""

from __future__ import annotations
