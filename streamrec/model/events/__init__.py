"""The event contract: typed schemas for every topic, their parser, and recognizing events seen before.

May import: model.base, model.errors.
"""

from __future__ import annotations
