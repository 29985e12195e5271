"""Text read and written: the encoder and where it runs, the review reader, opinions and sentiment,
item texts, reviewers' reputation of items, the text space and its versions, the wording of reasons.

May import: model.base, model.errors, model.events.
"""

from __future__ import annotations
