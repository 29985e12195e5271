"""`streamrec demo`: the whole pipeline on a real sample, from events in to recommendations out."""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamrec.eval.sample import load_sample
from streamrec.streams.kafka.clients import kafka_config
from streamrec.streams.kafka.topics import Topics
from streamrec.streams.replay import Collector, Replayer
from streamrec.streams.settings import Settings
from streamrec.streams.stack import Stack
from streamrec.streams.worker import ROLES

__all__ = ["run_demo"]


def _events(records: list[dict[str, Any]], topics: Topics) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Items first, then each review as a purchase click followed by the review."""
    for r in records:
        if r["type"] == "item":
            item = {k: v for k, v in r.items() if k != "type" and v is not None}
            yield topics.items, item, r["item_id"]
    for r in records:
        if r["type"] in ("review", "new_user_review"):
            click = {"user_id": r["user_id"], "item_id": r["item_id"], "event": "purchase", "ts": r["ts"]}
            yield topics.clicks, click, r["user_id"]
            review = {k: r[k] for k in ("user_id", "item_id", "text", "rating", "ts")}
            yield topics.reviews, review, r["user_id"]


def run_demo(settings: Settings, show_users: int = 3, limit: int | None = None, rate: float = 30.0) -> int:
    console = Console()
    state = settings.data_dir / "demo"
    if state.exists():
        shutil.rmtree(state)  # a fresh broker needs fresh checkpoints
    settings = settings.model_copy(update={"data_dir": state, "kafka_bootstrap": None})
    records = load_sample()
    if limit is not None:
        reviews = [r for r in records if r["type"] == "review"][:limit]
        records = [r for r in records if r["type"] != "review"] + reviews
    titles = {r["item_id"]: r["title"] for r in records if r["type"] == "item"}
    reviewed = {r["item_id"] for r in records if r["type"] in ("review", "new_user_review")}
    catalog_only = set(titles) - reviewed

    started = time.monotonic()
    with Stack(settings, log_dir=state / "logs") as stack:
        with console.status(
            "starting the embedded broker and the workers (cf, encoder, recommender, api)..."
        ):
            bootstrap = stack.start_broker()
            worker = stack.start_worker(ROLES)
            waited = stack.wait_ready(timeout=240)
        console.print(
            f"kafka bootstrap: {bootstrap}   metrics: {worker.metrics_url}   ready in {waited:.1f}s\n"
            f"api: {worker.api_url} (docs: {worker.api_url}/docs; while the demo runs, try "
            f"{worker.api_url}/v1/users/USER/recommendations)"
        )
        topics = Topics.from_settings(settings)
        config = kafka_config(settings, bootstrap)
        collector = Collector(config, topics.recommendations)
        portraits = Collector(config, topics.profiles)
        vectors = Collector(config, topics.vectors)
        replayer = Replayer(config)
        events = list(_events(records, topics))
        catalog = [e for e in events if e[0] == topics.items]
        interactions = [e for e in events if e[0] != topics.items]
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("catalog: encoding items", total=len(catalog))
            replayer.replay(catalog)
            replayer.flush()
            while True:
                encoded = {
                    m["id"] for _, m in vectors.messages if m["kind"] == "item" and m["name"] == "text"
                }
                progress.update(task, completed=len(encoded & set(titles)))
                if set(titles) <= encoded:
                    break
                time.sleep(0.2)
            vectors.close()
            task = progress.add_task(f"replaying clicks and reviews at {rate:g}/s", total=len(interactions))
            replayer.replay(interactions, rate=rate, progress=lambda n: progress.advance(task, n))
            replayer.flush()

        # Every user's last event must come back as the trigger of a recommendation.
        last: dict[str, tuple[str, int, int]] = {}
        for d in replayer.delivered:
            if d.key is not None and d.topic != topics.items:
                last[d.key] = (d.topic, d.partition, d.offset)
        with console.status("waiting for the last recommendations..."):
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                answered = _answered(collector.messages)
                if all(answered.get((u, t, p), -1) >= off for u, (t, p, off) in last.items()):
                    break
                time.sleep(0.5)
        collector.close()
        time.sleep(0.5)  # the last profiles follow the last recommendations
        portraits.close()
        deadletters = sum(worker.metric("streamrec_deadletter_total").values()) if worker.is_ready() else 0.0
        elapsed = time.monotonic() - started
        answered = _answered(collector.messages)
        missing = [u for u, (t, p, off) in last.items() if answered.get((u, t, p), -1) < off]

    profiles = {m["user_id"]: m for _, m in portraits.messages}
    _show(console, records, collector.messages, titles, catalog_only, show_users, profiles)
    latencies: dict[str, list[float]] = defaultdict(list)
    for arrived, msg in collector.messages:
        latencies[msg["trigger"]["topic"]].append(arrived - msg["trigger"]["ts"])
    summary = Table(title="summary", show_header=False)
    counts: dict[str, int] = defaultdict(int)
    for topic, _, _ in events:
        counts[topic] += 1
    summary.add_row(
        "events in",
        f"{len(events)} ({counts[topics.items]} items, {counts[topics.clicks]} clicks, "
        f"{counts[topics.reviews]} reviews)",
    )
    summary.add_row("recommendations out", str(len(collector.messages)))
    summary.add_row("users answered", f"{len(last) - len(missing)} of {len(last)}")
    for topic, label in (
        (topics.clicks, "after a click"),
        (topics.reviews, "after a review (incl. encoding)"),
    ):
        if latencies.get(topic):
            values = np.array(latencies[topic]) * 1000
            summary.add_row(
                f"event-to-recommendation p50 / p99, {label}",
                f"{np.percentile(values, 50):.0f} ms / {np.percentile(values, 99):.0f} ms",
            )
    recommended = {i["item_id"] for _, m in collector.messages for i in m["items"]}
    summary.add_row(
        "catalog-only items recommended (text alone)",
        f"{len(recommended & catalog_only)} of {len(catalog_only)}",
    )
    summary.add_row("dead letters", f"{deadletters:.0f}")
    summary.add_row("metrics", f"{worker.metrics_url} (while running)")
    summary.add_row("wall time", f"{elapsed:.0f} s")
    console.print(summary)
    if missing:
        console.print(f"[red]{len(missing)} users got no recommendation for their last event[/red]")
        return 1
    return 0


def _answered(messages: list[tuple[float, dict[str, Any]]]) -> dict[tuple[str, str, int], int]:
    """Highest trigger offset answered per (user, topic, partition)."""
    out: dict[tuple[str, str, int], int] = {}
    for _, msg in messages:
        trigger = msg["trigger"]
        key = (msg["user_id"], trigger["topic"], trigger["partition"])
        out[key] = max(out.get(key, -1), trigger["offset"])
    return out


def _show(
    console: Console,
    records: list[dict[str, Any]],
    messages: list[tuple[float, dict[str, Any]]],
    titles: dict[str, str],
    catalog_only: set[str],
    n: int,
    profiles: dict[str, dict[str, Any]] | None = None,
) -> None:
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["type"] in ("review", "new_user_review"):
            history[r["user_id"]].append(r)
    latest: dict[str, dict[str, Any]] = {}
    for _, msg in messages:
        latest[msg["user_id"]] = msg
    newcomer = next((r["user_id"] for r in records if r["type"] == "new_user_review"), None)
    regulars = sorted((u for u in history if u != newcomer), key=lambda u: -len(history[u]))[:n]
    for user in regulars + ([newcomer] if newcomer else []):
        label = "brand-new user, first review" if user == newcomer else f"{len(history[user])} reviews"
        table = Table(title=f"user {user} ({label})", title_justify="left", expand=True)
        table.add_column("recent history", ratio=2)
        table.add_column("recommended", ratio=2)
        table.add_column("score", justify="right")
        table.add_column("why", ratio=3)
        past = [
            f"{'*' * int(r['rating'])} {titles.get(r['item_id'], r['item_id'])[:40]}"
            for r in history[user][-5:][::-1]
        ]
        recs = latest.get(user, {}).get("items", [])[:5]
        for row in range(max(len(past), len(recs))):
            item = recs[row] if row < len(recs) else None
            name = ""
            if item is not None:
                name = titles.get(item["item_id"], item["item_id"])[:40]
                if item["item_id"] in catalog_only:
                    name += " [new, no interactions]"
            table.add_row(
                past[row] if row < len(past) else "",
                name,
                f"{item['score']:.2f}" if item else "",
                "; ".join(item["reasons"]) if item else "",
            )
        console.print(table)
        view = (profiles or {}).get(user)
        if view is not None:
            read = f"{view['reviews']} review(s) read; {view['demanding']}"
            lines = [f"[bold]profile[/bold]: {view['summary']} {read}."]
            for aspect in view["cares_about"][:3]:
                quotes = "; ".join(f"“{e['text']}”" for e in aspect["evidence"])
                lines.append(
                    f"  {aspect['label']}: {aspect['mentions']} mention(s), {aspect['praised']} praising, "
                    f"{aspect['criticized']} critical: {quotes}"
                )
            if view["disliked"]:
                disliked = ", ".join(titles.get(i["item_id"], i["item_id"])[:30] for i in view["disliked"])
                lines.append(f"  disliked: {disliked}")
            console.print("\n".join(lines))
