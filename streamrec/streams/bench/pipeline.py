"""CF throughput: the running pipeline against a plain loop of the same model over the same events.

The pipeline's figure counts from the moment the CF worker starts consuming a backlog of
`n` clicks to the moment its consumer group has committed all of them, which the CF role
does only once the model that learned them is checkpointed: every event learned and
durable. The raw figure is `OnlineCF.learn_one` over the same (user, item) pairs in this
process, timed before and after the pipeline so that a change in the machine's load
between the two shows up as a gap between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streamrec.model.cf.mf import OnlineCF
from streamrec.streams.bench.cluster import Phase, end_offsets, metric_total, wait_until
from streamrec.streams.bench.profile import Profile
from streamrec.streams.bench.workload import Workload
from streamrec.streams.replay import Replayer
from streamrec.streams.settings import CFSettings
from streamrec.streams.stack import WorkerProcess

__all__ = ["bench_cf", "raw_rate"]

Say = Callable[[str], None]
#: How often the worker's counters and the group's offsets are read while timing: each read
#: costs the worker a metrics scrape, so not too often (0.1 s is 0.4% of a 25 s run).
POLL_S = 0.1


def raw_rate(pairs: Sequence[tuple[str, str]], cfg: CFSettings) -> float:
    """Events/s of a fresh `OnlineCF` (the CF role's settings) learning `pairs` one by one."""
    model = OnlineCF(n_factors=cfg.n_factors, n_negatives=cfg.n_negatives, lr=cfg.lr)
    learn = model.learn_one
    started = time.perf_counter()
    for user, item in pairs:
        learn(user, item, None)
    return len(pairs) / (time.perf_counter() - started)


def bench_cf(
    phase: Phase,
    workload: Workload,
    n: int,
    say: Say,
    profile_dir: Path | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    topics, cfg = phase.topics, phase.settings.cf
    replayer = Replayer(phase.config)
    replayer.replay(workload.catalog_events(topics.items))
    say(f"cf: producing {n:,} clicks")
    replayer.replay(workload.click_events(topics.clicks, 0, n))
    replayer.flush()
    ends = end_offsets(replayer.delivered, topics.clicks)
    pairs = [workload.click(i)[:2] for i in range(n)]

    say("cf: raw river loop (before)")
    raw_before = raw_rate(pairs, cfg)
    say("cf: starting a cf worker on the backlog")
    worker = phase.worker(["cf"])

    def consumed() -> float:
        return metric_total(worker, "streamrec_events_consumed_total", topic=topics.clicks, role="cf")

    with Profile(worker.process.pid, profile_dir, "cf") as profile:
        t_zero = _last_zero(consumed, timeout, worker)
        wait_until(lambda: consumed() >= n, timeout, f"the cf worker to learn {n} clicks", POLL_S, [worker])
        t_learned = time.perf_counter()
        wait_until(
            lambda: phase.caught_up(phase.cf_group, topics.clicks, ends),
            timeout,
            "the cf group to commit every click",
            POLL_S,
            [worker],
        )
        t_durable = time.perf_counter()
    deadletters = metric_total(worker, "streamrec_deadletter_total")
    users = metric_total(worker, "streamrec_model_entities", role="cf", kind="users")
    phase.stop()

    say("cf: raw river loop (after)")
    raw_after = raw_rate(pairs, cfg)
    raw = (raw_before + raw_after) / 2
    pipeline = n / (t_durable - t_zero)
    return {
        "events": n,
        "pipeline_events_per_s": pipeline,
        "learned_events_per_s": n / (t_learned - t_zero),
        "raw_events_per_s": raw,
        "raw_before_events_per_s": raw_before,
        "raw_after_events_per_s": raw_after,
        "ratio": pipeline / raw,
        "seconds_to_durable": t_durable - t_zero,
        "commit_lag_s": t_durable - t_learned,
        "checkpoint_interval_s": cfg.checkpoint_interval_s,
        "deadletters": deadletters,
        "users": users,
        "profile": profile.summary,
    }


def _last_zero(consumed: Callable[[], float], timeout: float, worker: WorkerProcess) -> float:
    """The last instant at which the worker had consumed nothing: the clock starts there,
    which can only understate the rate, by one poll at most."""
    zero = time.perf_counter()

    def started() -> bool:
        nonlocal zero
        asked = time.perf_counter()
        if consumed() > 0:
            return True
        zero = asked
        return False

    wait_until(started, timeout, "the cf worker's first batch", POLL_S, [worker])
    return zero
