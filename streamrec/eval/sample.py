"""The sample shipped with the package: items, clicks and reviews of musical instruments
(`streamrec/data/README.md` says where it comes from), read by the demo, the bench and the tests."""

from __future__ import annotations

import gzip
from importlib import resources
from typing import Any

import orjson

__all__ = ["SAMPLE", "load_sample"]

#: The sample's file in `streamrec/data/`.
SAMPLE = "amazon_instruments_sample.jsonl.gz"


def load_sample() -> list[dict[str, Any]]:
    """Every record of the sample, in its order (`type`: item, review or new_user_review)."""
    path = resources.files("streamrec") / "data" / SAMPLE
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        return [orjson.loads(line) for line in f if line.strip()]
