"""The index feed: every role that ranks follows the item vectors on `vectors`, and Qdrant mirrors them.

May import: what streams.roles may import.
"""

from __future__ import annotations
