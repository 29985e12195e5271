"""Metric accumulators for lists scored against what users did next: offline and live (the workers score
their own lists with them, so they live here, below `eval/`).

May import: model.base.
"""

from __future__ import annotations
