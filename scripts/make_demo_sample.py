"""Builds the demo sample shipped in streamrec/data from the Amazon Musical Instruments 5-core reviews.

    python scripts/make_demo_sample.py PATH/TO/Musical_instruments_reviews.csv.zip

The dataset has reviews but no product metadata. The sample replays every review
of a seeded random choice of users, in time order; each item's catalog entry
(title, description) is made of the summaries written by *other* users, which are
not replayed, so no replayed text leaks into the catalog. Items that none of the
chosen users reviewed appear in the catalog only: they are the "new items with
text but no interaction yet".
"""

from __future__ import annotations

import collections
import csv
import gzip
import io
import json
import random
import sys
import zipfile
from pathlib import Path

USERS = 90
CATALOG_ONLY = 30
SEED = 7
OUT = Path(__file__).resolve().parent.parent / "streamrec" / "data" / "amazon_instruments_sample.jsonl.gz"


def main(path: str) -> None:
    with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as f:
        rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")))
    rows = [r for r in rows if r["reviewText"].strip()]
    rows.sort(key=lambda r: (int(r["unixReviewTime"]), r["reviewerID"], r["asin"]))
    per_user = collections.Counter(r["reviewerID"] for r in rows)
    eligible = sorted(u for u, n in per_user.items() if 6 <= n <= 20)
    chosen = set(random.Random(SEED).sample(eligible, USERS))
    replay = [r for r in rows if r["reviewerID"] in chosen]
    summaries = collections.defaultdict(list)
    for r in rows:
        if r["reviewerID"] in chosen:
            continue
        if r["summary"].strip():
            summaries[r["asin"]].append(r["summary"].strip())
    replay = [r for r in replay if summaries.get(r["asin"])]
    replayed_items = {r["asin"] for r in replay}
    catalog_only = sorted(
        (a for a in summaries if a not in replayed_items), key=lambda a: -len(summaries[a])
    )[:CATALOG_ONLY]
    items = sorted(replayed_items) + catalog_only
    first_ts = int(replay[0]["unixReviewTime"])
    with gzip.open(OUT, "wt", encoding="utf-8") as out:
        for asin in items:
            said = summaries[asin]
            out.write(
                json.dumps(
                    {
                        "type": "item",
                        "item_id": asin,
                        "title": said[0][:200],
                        "description": " / ".join(said[1:6])[:1000] or None,
                        "ts": first_ts,
                    }
                )
                + "\n"
            )
        for r in replay:
            out.write(
                json.dumps(
                    {
                        "type": "review",
                        "user_id": r["reviewerID"],
                        "item_id": r["asin"],
                        "text": r["reviewText"],
                        "rating": float(r["overall"]),
                        "ts": int(r["unixReviewTime"]),
                    }
                )
                + "\n"
            )
        # A real review by someone outside the sample: a brand-new user's first event.
        newcomer = next(
            r
            for r in reversed(rows)
            if r["reviewerID"] not in chosen
            and r["asin"] in set(items)
            and r["overall"] == "5.0"
            and 200 <= len(r["reviewText"]) <= 600
        )
        out.write(
            json.dumps(
                {
                    "type": "new_user_review",
                    "user_id": newcomer["reviewerID"],
                    "item_id": newcomer["asin"],
                    "text": newcomer["reviewText"],
                    "rating": 5.0,
                    "ts": int(newcomer["unixReviewTime"]),
                }
            )
            + "\n"
        )
    print(
        f"{OUT}: {len(items)} items ({len(catalog_only)} catalog-only), {len(replay)} reviews,"
        f" {len({r['reviewerID'] for r in replay})} users"
    )


if __name__ == "__main__":
    main(sys.argv[1])
