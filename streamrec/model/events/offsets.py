"""Where an event sits in its log: the key that checkpoints and profiles keep offsets under."""

from __future__ import annotations

__all__ = ["partition_key"]


def partition_key(topic: str, partition: int) -> str:
    """The key of one partition of a topic in a map of offsets.

    >>> partition_key("clicks", 3)
    'clicks:3'
    """
    return f"{topic}:{partition}"
