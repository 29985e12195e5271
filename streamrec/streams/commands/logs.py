"""How the commands log: level, format, and runs of repeated warnings thinned out."""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging"]


class _Repeats(logging.Filter):
    """Lets one of a run of identical messages through per `interval` seconds.

    While a broker is away, clients log the same connection error every 100 ms.
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = record.created
        if now - self._last.get(key, 0.0) < self.interval:
            return False
        self._last[key] = now
        return True


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    repeats = _Repeats()
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeats)
    for noisy in ("aiokafka", "faust", "mode", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
