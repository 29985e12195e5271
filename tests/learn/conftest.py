"""A shop's export for the learning tests: the packaged demo sample's reviews as a CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from streamrec.eval.sample import load_sample

#: The CSV's columns, for `--columns`.
COLUMNS = "user=user_id,item=item_id,rating=rating,text=text,ts=ts"


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """674 real Amazon reviews of 90 users (streamrec/data/README.md) in time order, as a CSV."""
    path = tmp_path_factory.mktemp("shop") / "reviews.csv"
    reviews = [r for r in load_sample() if r["type"] == "review"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "rating", "text", "ts"])
        for r in reviews:
            writer.writerow([r["user_id"], r["item_id"], r["rating"], r["text"], r["ts"]])
    return path
