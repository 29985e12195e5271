"""The encoder role: catalog and reviews encoded, published as vectors; re-encoding under a new encoder.

May import: what streams.roles may import.
"""

from __future__ import annotations
