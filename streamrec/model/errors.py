"""Errors raised by the model layer.

StreamrecError
 ├── InvalidEvent        a message that does not satisfy the event contract
 ├── DatasetError        a dataset file that cannot be read as asked
 └── EncoderError        a text encoder that cannot be loaded or run
"""

from __future__ import annotations

__all__ = ["DatasetError", "EncoderError", "InvalidEvent", "StreamrecError"]


class StreamrecError(Exception):
    """Base class of every error streamrec raises on purpose."""


class InvalidEvent(StreamrecError):
    """A message that does not satisfy the event contract.

    `reason` is a short, stable code (used as a metric label); the message says
    what was expected and what was seen.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatasetError(StreamrecError):
    """A dataset that cannot be read as asked (format, column, line)."""


class EncoderError(StreamrecError):
    """A text encoder that cannot be loaded or run."""
