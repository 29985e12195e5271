"""What is known of each user: the profile, the lists they were shown, forgetting, their share of the
counts, and the profile in words.

May import: model.base, model.errors, model.events, model.index, model.text.
"""

from __future__ import annotations
