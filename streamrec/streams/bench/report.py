"""The benchmark's targets, and the table that shows every figure beside its limit."""

from __future__ import annotations

from typing import Any, TypeGuard

from rich.table import Table

__all__ = ["TARGETS", "targets", "table"]

#: Targets on a 2-core CPU machine (the issue's), by name: (what, limit, at most?).
TARGETS: dict[str, tuple[str, float, bool]] = {
    "cf_events_per_s": ("CF pipeline events/s, learned and committed", 5_000.0, False),
    "cf_ratio": ("CF pipeline / raw river loop", 0.8, False),
    "click_p99_ms": ("p99 click-to-recommendation, no backlog (ms)", 100.0, True),
    "max_sustained_clicks_per_s": (
        "highest click load held (p99 within the SLO, no backlog)",
        1_000.0,
        False,
    ),
    "ranking_ms_per_user": ("ranking cost per user, amortized over batches, large state (ms)", 0.25, True),
    "ranking_growth": ("ranking cost per user, large state / small state", 1.2, True),
    "checkpoint_pause_ms": ("recommender checkpoint: event loop paused (ms)", 20.0, True),
    "review_p99_ms": ("p99 review-to-recommendation (ms)", 1_000.0, True),
    "encoder_ratio": ("encoder / plain transformers baseline", 1.5, False),
    "memory_beyond_state_pct": ("RSS growth N to 2N beyond own state (% of RSS)", 10.0, True),
    "api_stored_p99_ms": ("p99 of a stored list over HTTP (ms)", 10.0, True),
    "api_computed_p99_ms": ("p99 of a list computed on request over HTTP (ms)", 50.0, True),
    "withdrawal_s": ("seconds from an item's deletion to the last list that named it", 5.0, True),
    "replica_start_s": ("seconds from an API process's start to serving", 10.0, True),
}


#: The API starts the bench times: its key, how the process starts, and what it reads.
_STARTS = (
    ("restart_s", "restarted", "from its checkpoint"),
    ("seeded_replica_s", "a new replica, seeded", "from another's checkpoint (STREAMREC_API_SEED)"),
    ("snapshot_replica_s", "a new replica, given nothing", "from the latest snapshot on api-snapshots"),
    ("new_replica_s", "a new replica, snapshots off", "read from the beginning"),
)


def _ok(section: Any) -> TypeGuard[dict[str, Any]]:
    """A section that was measured (one that failed holds its error instead)."""
    return isinstance(section, dict) and "error" not in section


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target the report has a figure for: value, limit, whether it holds."""
    values: list[tuple[str, str, float | None]] = []
    cf = report.get("cf")
    if _ok(cf):
        values += [("cf_events_per_s", "", cf["pipeline_events_per_s"]), ("cf_ratio", "", cf["ratio"])]
    latency = report.get("latency_ms")
    if _ok(latency):
        values.append(("click_p99_ms", _click_target(latency), latency["p99"]))
        values.append(("max_sustained_clicks_per_s", "one recommender process",
                       latency["max_sustained_events_per_s"]))  # fmt: skip
        reviews = latency["reviews"]
        values.append(("review_p99_ms", f"at {reviews['offered_events_per_s']:g} reviews/s", reviews["p99"]))
    state = report.get("state")
    if _ok(state):
        small, large = state["sizes"][0]["clicks"], state["sizes"][-1]["clicks"]
        per_user = state["sizes"][-1]["ranking_ms_per_user"]
        values.append(("ranking_ms_per_user", f"at {large:,} clicks", per_user))
        values.append(("ranking_growth", f"{large:,} vs {small:,} clicks", state["ranking_growth"]))
        values.append(("checkpoint_pause_ms", f"at {large:,} clicks", state["checkpoint_pause_ms"]))
    encoder = report.get("encoder")
    if _ok(encoder):
        values.append(("encoder_ratio", f"{encoder['device']}", encoder["ratio"]))
    memory = report.get("memory")
    if _ok(memory):
        for role, figures in memory.items():
            if isinstance(figures, dict):
                values.append(("memory_beyond_state_pct", role, figures["growth_beyond_state_pct"]))
    api = report.get("api")
    if _ok(api):
        stored, computed = api["stored"], api["computed"]
        values.append(
            ("api_stored_p99_ms", f"at {stored['offered_requests_per_s']:,.0f} requests/s", stored["p99"])
        )
        values.append(
            (
                "api_computed_p99_ms",
                f"at {computed['offered_requests_per_s']:,.0f} requests/s",
                computed["p99"],
            )
        )
        values.append(("withdrawal_s", f"{api['withdrawal']['lists_naming_it']:,} lists",
                        api["withdrawal"]["seconds_to_last_list"]))  # fmt: skip
        replicas = api.get("replicas")
        if replicas:
            for key, how, _ in _STARTS:
                if key in replicas:
                    where = f"{how}, {replicas['clicks_retained']:,} clicks retained"
                    values.append(("replica_start_s", where, replicas[key]))
    out = []
    for name, where, value in values:
        what, limit, at_most = TARGETS[name]
        holds = None if value is None else (value <= limit if at_most else value >= limit)
        if where.endswith("backlog left"):
            holds = False
        out.append({"target": name, "what": what, "where": where, "value": value, "limit": limit,
                    "at_most": at_most, "holds": holds})  # fmt: skip
    return out


def _click_target(latency: dict[str, Any]) -> str:
    """Where the click target is measured; a backlog left after that load fails it."""
    rate = latency["offered_events_per_s"]
    main = next(r for r in latency["loads"] if r["offered_events_per_s"] == rate)
    return f"at {rate:,.0f} clicks/s" + ("" if main["drain_s"] is not None else ", backlog left")


def _api_rows(out: Table, api: dict[str, Any], held: dict[tuple[str, str], bool | None]) -> None:
    rows = (("stored", "<= 10 ms", "api_stored_p99_ms"), ("computed", "<= 50 ms", "api_computed_p99_ms"))
    for kind, target, name in rows:
        run = api[kind]
        where = f"at {run['offered_requests_per_s']:,.0f} requests/s"
        out.add_row(
            f"API, {kind} lists {where}",
            f"p50/p95/p99 {_ms(run)} ms",
            f"{run['answered_per_s']:,.0f} answered/s{'' if api.get('token') else ', no token'}; "
            f"errors {run['errors'] or 'none'}; "
            f"in the server p99 <= {_n(run.get('server_p99_at_most_ms'), 1)} ms",
            f"p99 {target}",
            _mark(held.get((name, where))),
        )
        if run.get("cpu_ms_per_event"):
            out.add_row(f"CPU per request, {kind} lists", *_cpu(run), "", "")
    gone = api["withdrawal"]
    out.add_row(
        "deleted item off every list",
        f"{_n(gone['seconds_to_last_list'], 2)} s to the last of {gone['lists_naming_it']:,} lists",
        f"p50 {_n(gone['p50_seconds'], 2)} s; {gone['lists_still_naming_it']} still naming it",
        "<= 5 s",
        _mark(held.get(("withdrawal_s", f"{gone['lists_naming_it']:,} lists"))),
    )
    replicas = api.get("replicas")
    if replicas:
        retained = f"{replicas['clicks_retained']:,} clicks retained"
        for key, how, source in _STARTS:
            if key not in replicas:
                continue
            out.add_row(
                f"API process start to serving, {how}",
                f"{_n(replicas[key], 1)} s",
                f"{retained}; {source}",
                "<= 10 s",
                _mark(held.get(("replica_start_s", f"{how}, {retained}"))),
            )


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(figures: dict[str, Any]) -> str:
    return f"{_n(figures.get('p50'))} / {_n(figures.get('p95'))} / {_n(figures.get('p99'))}"


def _by_role(figures: dict[str, float], unit: str) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in figures.items()) + unit


def _cpu(run: dict[str, Any]) -> tuple[str, str]:
    """CPU ms per event by process, and the cores they kept busy over the load and its drain."""
    cores = run.get("cores_busy") or {}
    return (
        _by_role(run["cpu_ms_per_event"], " ms"),
        f"{sum(cores.values()):.2f} cores busy (" + _by_role(cores, ")"),
    )


def _backlog(run: dict[str, Any]) -> str:
    """What the load waited for before it began: an earlier load's backlog, worked off."""
    waited = run.get("waited_for_backlog_s") or 0.0
    if not run.get("started_without_backlog", True):
        return f"; began with an earlier load's backlog ({waited:.0f} s waited)"
    return f"; began after {waited:.0f} s working off the last load" if waited >= 1.0 else ""


def _mark(holds: bool | None) -> str:
    return {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[holds]


def table(report: dict[str, Any]) -> Table:
    """Every figure, the limit measured beside it in the same run, and the target."""
    out = Table(title="streamrec bench", show_lines=False)
    for column in ("measurement", "figure", "measured beside it", "target", "holds"):
        out.add_column(column)
    held = {(t["target"], t["where"]): t["holds"] for t in report.get("targets", [])}
    for name, section in report.items():
        if isinstance(section, dict) and "error" in section:
            out.add_row(name, f"[red]{section['error']}[/red]", "", "", "[red]no[/red]")

    cf = report.get("cf")
    if _ok(cf):
        out.add_row(
            f"CF pipeline, {cf['events']:,} clicks",
            f"{_n(cf['pipeline_events_per_s'])} events/s learned+committed",
            f"raw river loop {_n(cf['raw_events_per_s'])}/s; ratio {cf['ratio']:.2f}",
            ">= 5,000/s and >= 0.8x raw",
            _mark(held.get(("cf_events_per_s", "")) and held.get(("cf_ratio", ""))),
        )
    latency = report.get("latency_ms")
    if _ok(latency):
        hop = latency["broker_hop"]
        for run in latency["loads"]:
            target = run["offered_events_per_s"] == latency["offered_events_per_s"]
            out.add_row(
                f"clicks at {_n(run['offered_events_per_s'])}/s", f"p50/p95/p99 {_ms(run)} ms",
                f"broker hop p50/p99 {_n(hop['p50'])} / {_n(hop['p99'])} ms" + _backlog(run),
                f"p99 <= {_n(latency['slo_ms'])} ms" if target else "",
                _mark(run["sustained"]) if not target else _mark(held.get(
                    ("click_p99_ms", _click_target(latency)))),
            )  # fmt: skip
        reviews = latency["reviews"]
        per_review = reviews.get("encoder_sequences_per_review")
        out.add_row(
            f"reviews at {_n(reviews['offered_events_per_s'])}/s",
            f"p50/p95/p99 {_ms(reviews)} ms"
            + (f"; {per_review:.2f} encoder sequences per review" if per_review is not None else ""),
            "two broker hops (encoder, recommender)",
            f"p99 <= {_n(reviews['slo_ms'])} ms",
            _mark(held.get(("review_p99_ms", f"at {reviews['offered_events_per_s']:g} reviews/s"))),
        )
        out.add_row(
            "most clicks/s sustained",
            f"{_n(latency['max_sustained_events_per_s'])}/s",
            f"p99 <= {_n(latency['sustained_bound_ms'])} ms (SLO + one broker hop), no backlog",
            f">= {_n(TARGETS['max_sustained_clicks_per_s'][1])}/s",
            _mark(held.get(("max_sustained_clicks_per_s", "one recommender process"))),
        )
        if latency.get("idle_cores"):
            idle = latency["idle_cores"]
            out.add_row("CPU with no events", f"{sum(idle.values()):.2f} cores", _by_role(idle, ""), "", "")
        for run in (*latency["loads"], reviews):
            if run.get("cpu_ms_per_event"):
                kind = "review" if run is reviews else "click"
                out.add_row(f"CPU per {kind} at {_n(run['offered_events_per_s'])}/s", *_cpu(run), "", "")
    state = report.get("state")
    if _ok(state):
        small, large = state["sizes"][0], state["sizes"][-1]
        where = f"{large['clicks']:,} vs {small['clicks']:,} clicks"
        out.add_row(
            f"ranking per user, {small['clicks']:,} then {large['clicks']:,} clicks",
            f"{small['ranking_ms_per_user']:.2f} -> {large['ranking_ms_per_user']:.2f} ms: "
            f"{state['ranking_growth']:.2f}x",
            f"{small['users_ranked']:,} then {large['users_ranked']:,} users, 64 a batch; "
            f"item-to-item entries {small['cooccurrence_entries']:,} -> {large['cooccurrence_entries']:,}",
            f"<= {TARGETS['ranking_ms_per_user'][1]:g} ms; <= {TARGETS['ranking_growth'][1]:g}x",
            _mark(
                held.get(("ranking_ms_per_user", f"at {large['clicks']:,} clicks"))
                and held.get(("ranking_growth", where))
            ),
        )
        out.add_row(
            f"recommender checkpoint at {large['clicks']:,} clicks",
            f"event loop paused {large['pause_ms']:.1f} ms"
            + (" (fork)" if large["forked"] else " (serialized on the loop)"),
            f"serialized on the loop: {large['serialize_ms']:.0f} ms, "
            f"{large['checkpoint_bytes'] / 1e6:.1f} MB",
            "<= 20 ms",
            _mark(held.get(("checkpoint_pause_ms", f"at {large['clicks']:,} clicks"))),
        )
    encoder = report.get("encoder")
    if _ok(encoder):
        st = encoder.get("sentence_transformers_texts_per_s")
        worker = encoder.get("worker_texts_per_s")
        default = encoder.get("default_dtype")
        padding = encoder.get("padding")
        out.add_row(
            f"encoder ({encoder['device']}, {encoder.get('backend', 'torch')}, {encoder['dtype']}), "
            f"{encoder['texts']} reviews",
            f"{_n(encoder['texts_per_s'], 1)} texts/s"
            + (f" ({default['dtype']}: {_n(default['texts_per_s'], 1)}/s)" if default else "")
            + (f"; worker: {_n(worker, 1)}/s" if worker else ""),
            f"plain transformers {_n(encoder['baseline_texts_per_s'], 1)}/s; ratio {encoder['ratio']:.2f}"
            + (f"; sentence-transformers {_n(st, 1)}/s" if st else "")
            + (f"; padding bound {padding['bound']:.2f}x" if padding else ""),
            ">= 1.5x baseline",
            _mark(held.get(("encoder_ratio", encoder["device"]))),
        )
        for name, variant in (encoder.get("variants") or {}).items():
            out.add_row(
                f"encoder variant {name} ({variant['backend']}, {variant['dtype']}, "
                f"{variant['max_length']} tokens)",
                f"{_n(variant['texts_per_s'], 1)} texts/s",
                f"cosine to float32 least {variant['min_cosine_to_float32']:.4f}, "
                f"mean {variant['mean_cosine_to_float32']:.4f}",
                ">= 0.99 for every text, to be a default",
                _mark(variant["holds"]),
            )
    qdrant = report.get("qdrant")
    if _ok(qdrant):
        for run in qdrant["runs"]:
            out.add_row(
                f"Qdrant {run['backend']}, {run['points']:,} points",
                f"upsert {_n(run['upsert_points_per_s'])} points/s; search {_n(run['search_qps'], 1)} q/s",
                f"k={run['batch_search_k']}, {run['batch_size']} queries a call: "
                f"{_n(run['batch_search_qps'], 1)} q/s",
                "",
                "",
            )
    api = report.get("api")
    if _ok(api):
        _api_rows(out, api, held)
    memory = report.get("memory")
    if _ok(memory):
        for role, m in memory.items():
            if not isinstance(m, dict):
                continue
            out.add_row(
                f"memory: {role}, {m['events_n']:,} then {2 * m['events_n']:,} {m['events']}",
                f"peak RSS {_n(m['rss_mb_at_n'])} -> {_n(m['rss_mb_at_2n'])} MB",
                f"own state {_n(m['state_mb_at_n'], 1)} -> {_n(m['state_mb_at_2n'], 1)} MB; "
                f"beyond it {m['growth_beyond_state_pct']:+.1f}%",
                "<= 10% beyond state",
                _mark(held.get(("memory_beyond_state_pct", role))),
            )
    return out
