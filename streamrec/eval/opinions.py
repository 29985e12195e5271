"""What a shop's reviewers say: every review read as the pipeline reads it, and each item's reputation.

`read_opinions` replays a dataset's reviews in time order through the workers' own
`ReviewReader` (each review read by the sentiment model as it stood before the review, which
then learns the review's rating) and the recommender's own `Reputation` (per item and aspect:
reviewers, praise, criticism, the strongest words of each). `write_opinions` writes what it
found: ``reviews.jsonl`` (one line per review), ``items.json`` and ``items.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamrec.eval.interactions import Dataset
from streamrec.model.serving.reviews import verdict
from streamrec.model.text.reader import Reading, ReviewReader
from streamrec.model.text.reputation import Reputation

__all__ = ["OpinionsRun", "labels_of", "read_opinions", "summary", "write_opinions"]

#: Reviews encoded per call: large enough to batch well, small enough to show progress.
CHUNK = 256


@dataclass
class OpinionsRun:
    """Every review as read, and the reputations they built."""

    reviews: list[dict[str, Any]] = field(default_factory=list)
    reputation: Reputation = field(default_factory=Reputation)
    #: Per item: `[reviews, sum of their verdicts]` (ratings where given, else polarities).
    items: dict[str, list[float]] = field(default_factory=dict)


def read_opinions(
    dataset: Dataset, reader: ReviewReader, progress: Callable[[int, int], None] | None = None
) -> OpinionsRun:
    """Read every review of `dataset` in time order, each before its rating is learned."""
    events = [e for e in dataset.interactions if e.text]
    run = OpinionsRun()
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        for event, passage in zip(chunk, reader.encode([e.text or "" for e in chunk]), strict=True):
            reading = reader.judge(passage, event.rating)
            reader.learn(passage, event.rating)
            reader.commit()
            _record(run, event.user, event.item, event.rating, event.ts, reading)
        if progress is not None:
            progress(start + len(chunk), len(events))
    return run


def _record(
    run: OpinionsRun, user: str, item: str, rating: float | None, ts: float, reading: Reading
) -> None:
    key = f"{len(run.reviews)}".encode()
    run.reviews.append(
        {
            "user_id": user,
            "item_id": item,
            "rating": rating,
            "ts": ts,
            "polarity": round(reading.polarity, 4),
            "text": reading.text,
            "opinions": [o.to_dict() for o in reading.opinions],
        }
    )
    run.reputation.add(key, item, reading.opinions, user)
    row = run.items.setdefault(item, [0.0, 0.0])
    row[0] += 1
    row[1] += verdict(rating, reading.polarity)


def summary(run: OpinionsRun, labels: dict[str, str]) -> dict[str, Any]:
    """Per item: its reviews, their mean verdict, and per aspect what reviewers say, with evidence."""
    out: dict[str, Any] = {}
    rep = run.reputation
    for item, (n, total) in sorted(run.items.items(), key=lambda kv: -kv[1][0]):
        aspects: dict[str, dict[str, Any]] = {}
        for aspect in rep.aspects_of(item):
            reviewers, praising = rep.counts(item, aspect)
            aspects[aspect] = {
                "label": labels.get(aspect, aspect),
                "reviewers": reviewers,
                "praising": praising,
                "not_praising": reviewers - praising,
                "standing": round(rep.standing(item, aspect), 4),
                "praise": rep.quote(item, aspect, 1),
                "criticism": rep.quote(item, aspect, -1),
            }
        ranked = dict(sorted(aspects.items(), key=lambda kv: -kv[1]["reviewers"]))
        out[item] = {"reviews": int(n), "mean_verdict": round(total / n, 4), "aspects": ranked}
    return out


def write_opinions(run: OpinionsRun, out: Path, labels: dict[str, str], title: str) -> dict[str, Path]:
    """Write ``reviews.jsonl``, ``items.json`` and ``items.html`` under `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"reviews": out / "reviews.jsonl", "items": out / "items.json", "page": out / "items.html"}
    with paths["reviews"].open("wb") as f:
        for review in run.reviews:
            f.write(orjson.dumps(review) + b"\n")
    items = summary(run, labels)
    paths["items"].write_text(json.dumps(items, indent=1, ensure_ascii=False), encoding="utf-8")
    paths["page"].write_text(_page(items, title, len(run.reviews)), encoding="utf-8")
    return paths


def _page(items: dict[str, Any], title: str, n_reviews: int, most: int = 200) -> str:
    """A page a person reads: per item, what reviewers praise and criticize, in their words."""
    esc = html.escape
    rows: list[str] = []
    for item, entry in list(items.items())[:most]:
        cells = []
        for aspect in entry["aspects"].values():
            quotes = [
                f'<q class="{kind}">{esc(text)}</q>'
                for kind, text in (("good", aspect["praise"]), ("bad", aspect["criticism"]))
                if text
            ]
            width = 100 * aspect["praising"] / max(aspect["reviewers"], 1)
            cells.append(
                f"<div class=aspect><b>{esc(aspect['label'])}</b> "
                f"{aspect['praising']} of {aspect['reviewers']} reviewers praise it"
                f'<div class=bar><span style="width:{width:.0f}%"></span></div>{"".join(quotes)}</div>'
            )
        rows.append(
            f"<tr><td><code>{esc(item)}</code><br>{entry['reviews']} reviews, mean "
            f"{entry['mean_verdict']:+.2f}</td><td>{''.join(cells) or '<i>no aspect named</i>'}</td></tr>"
        )
    shown = f"the {most} most reviewed items" if len(items) > most else "every item"
    return _TEMPLATE.format(
        title=esc(title), n=n_reviews, n_items=len(items), shown=shown, rows="\n".join(rows)
    )


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>What reviewers say: {title}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ border-top: 1px solid #ddd; padding: .6em; vertical-align: top; }}
.aspect {{ margin-bottom: .6em; }}
.bar {{ background: #e88; height: 6px; width: 240px; margin: 3px 0; }}
.bar span {{ background: #4a4; height: 6px; display: block; }}
q {{ display: block; margin: 2px 0 0 1em; font-style: italic; }}
q.good::before {{ content: "+ "; color: #4a4; }} q.bad::before {{ content: "− "; color: #c33; }}
</style></head><body>
<h1>What reviewers say: {title}</h1>
<p>{n} reviews of {n_items} items, read in time order by streamrec's review reader; {shown}, most
reviewed first. Each aspect counts reviewers (a review that praises a thing twice is one reviewer
praising it); each quote is a reviewer's own words.</p>
<table>
{rows}
</table></body></html>
"""


def labels_of(reader: ReviewReader, language: str = "en") -> dict[str, str]:
    return {a.name: a.label(language) for a in reader.aspects}
