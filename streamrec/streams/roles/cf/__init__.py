"""The cf role: online matrix factorization fed in batches by its own checkpointed consumer.

May import: what streams.roles may import.
"""

from __future__ import annotations
