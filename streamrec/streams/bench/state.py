"""What a recommender's own work costs as its state grows: ranking per user, and the checkpoint's
pause on the event loop.

One process plays the cf and recommender roles over the workload's clicks, as the workers apply
them (`Learner`, `Serving`), the catalog's text vectors from the encoder and the CF vectors pushed
to the recommender every `push_every` clicks. At each size (clicks applied so far) it ranks the
latest active users in batches of 64, as the recommender role answers them, and takes the role's
checkpoint state twice: serialized on the caller's thread (how checkpoints were taken before) and
snapshotted by a forked child (`CheckpointStore.fork_save`, how the roles take them now), timing
what the caller waits for.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.model.cf.learner import Learner
from streamrec.model.cf.mf import OnlineCF
from streamrec.model.events.schemas import Click, Trigger
from streamrec.model.serving.service import Serving
from streamrec.streams.bench.workload import Workload
from streamrec.streams.kafka.checkpoint import CheckpointStore, can_fork
from streamrec.streams.roles.recommender.shared import make_recommender
from streamrec.streams.settings import Settings

__all__ = ["bench_state"]

Say = Callable[[str], None]
#: Users answered per ranking call, as the recommender role answers a batch.
ANSWER_BATCH = 64


def bench_state(
    workload: Workload,
    settings: Settings,
    say: Say,
    sizes: tuple[int, ...] = (2_000, 120_000),
    users: int = 512,
    repeats: int = 3,
    push_every: int = 1_000,
    encode: Callable[[list[str]], np.ndarray] | None = None,
) -> dict[str, Any]:
    catalog = {item: workload.catalog[item] for item in _items(workload, max(sizes))}
    say(f"state: encoding a catalog of {len(catalog):,} items")
    encode = encode or _encoder(settings)
    ids = list(catalog)
    vectors = encode([catalog[i] for i in ids])
    rec = make_recommender(settings, vectors.shape[1])
    for item, vector in zip(ids, vectors, strict=True):
        rec.on_item(item, catalog[item], vector, ts=0.0)
    serving = Serving(rec)
    model = OnlineCF(n_factors=settings.cf.n_factors, seed=42)
    learner = Learner(model)
    learner.catalog.update(ids)
    store = CheckpointStore(Path(tempfile.mkdtemp(prefix="streamrec-bench-state-")) / "checkpoint.pkl")
    out: dict[str, Any] = {"catalog_items": len(ids), "sizes": []}
    applied = 0
    recent: dict[str, None] = {}
    for size in sorted(sizes):
        say(f"state: applying clicks up to {size:,}")
        for i in range(applied, size):
            user, item, ts = workload.click(i)
            click = Click(user_id=user, item_id=item, event="click", ts=ts)
            learner.learn(click)
            serving.click(click, Trigger(topic="clicks", partition=0, offset=i, ts=ts))
            recent.pop(user, None)
            recent[user] = None
            if (i + 1) % push_every == 0:
                _push(model, rec)
        _push(model, rec)
        applied = size
        active = list(recent)[-users:]
        say(f"state: ranking {len(active)} users at {size:,} clicks")
        per_user = _rank(serving, active, repeats)
        pause = _checkpoint_pauses(store, serving, repeats)
        out["sizes"].append(
            {
                "clicks": size,
                "users_ranked": len(active),
                "ranking_ms_per_user": per_user,
                "cooccurrence_entries": rec.cooccurrence.entries(),
                **pause,
            }
        )
    first, last = out["sizes"][0], out["sizes"][-1]
    out["ranking_growth"] = last["ranking_ms_per_user"] / first["ranking_ms_per_user"]
    out["checkpoint_pause_ms"] = last["pause_ms"]
    out["checkpoint_serialize_ms"] = last["serialize_ms"]
    out["at_clicks"] = last["clicks"]
    return out


def _push(model: OnlineCF, rec: Any) -> None:
    """The CF vectors that changed, to the recommender (as the `vectors` topic carries them)."""
    users, items = model.drain_changed()
    found = {u: model.user_vector(u) for u in users}
    named = {str(u): v for u, v in found.items() if v is not None}
    if named:
        rec.on_user_cf(list(named), np.stack(list(named.values())))
    if items:
        names = list(items)
        rec.on_item_cf(names, model.item_vectors(names))


def _rank(serving: Serving, users: list[str], repeats: int) -> float:
    """Median over `repeats` of the milliseconds per user to answer `users`, 64 at a time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for at in range(0, len(users), ANSWER_BATCH):
            serving.answer(users[at : at + ANSWER_BATCH], k=10)
        times.append(1000.0 * (time.perf_counter() - started) / max(len(users), 1))
    return statistics.median(times)


def _checkpoint_pauses(store: CheckpointStore, serving: Serving, repeats: int) -> dict[str, Any]:
    """The recommender role's checkpoint state, serialized here, and snapshotted by a child."""
    state = serving.state()
    serialize, pause, written = [], [], []
    blob = b""
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        blob = store.dumps(state, dict(serving.offsets))
        serialize.append(1000.0 * (time.perf_counter() - started))
        if can_fork():
            started = time.perf_counter()
            pid = store.fork_save(state, dict(serving.offsets))
            pause.append(1000.0 * (time.perf_counter() - started))
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError("the checkpoint's child failed")
            store.publish()
            written.append(1000.0 * (time.perf_counter() - started))
    return {
        "serialize_ms": statistics.median(serialize),
        "pause_ms": statistics.median(pause) if pause else statistics.median(serialize),
        "snapshot_written_ms": statistics.median(written) if written else None,
        "checkpoint_bytes": len(blob),
        "forked": bool(pause),
    }


def _encoder(settings: Settings) -> Callable[[list[str]], np.ndarray]:
    from streamrec.model.text.encoder import TransformerEncoder

    encoder = TransformerEncoder(
        settings.encoder.model, device=settings.encoder.device, max_length=settings.encoder.max_length
    )
    return lambda texts: np.asarray(encoder.encode(texts), dtype=np.float32)


def _items(workload: Workload, n: int) -> list[str]:
    """Items the first `n` clicks name (later passes repeat the log's items)."""
    seen: dict[str, None] = {}
    for _, item, _ in workload.clicks[: min(n, len(workload.clicks))]:
        seen.setdefault(item, None)
    return list(seen)
