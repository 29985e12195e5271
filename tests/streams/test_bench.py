"""`streamrec bench` end to end at tiny sizes, and the pieces it is made of.

Timings are never held to a threshold here: a benchmark prints figures, and these tests
only check that every figure is there, positive, and in the documented shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.streams.bench.cpu import CpuMeter
from streamrec.streams.bench.latency import percentiles
from streamrec.streams.bench.memory import peak_rss_mb, rss_mb, traced_mb
from streamrec.streams.bench.profile import summarize
from streamrec.streams.bench.qdrant import bench_qdrant
from streamrec.streams.bench.report import table, targets
from streamrec.streams.bench.suite import BenchConfig
from streamrec.streams.bench.workload import Workload, load_workload, packaged_sample
from streamrec.streams.commands.cli import app


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_workload_continues_with_new_users_and_later_times() -> None:
    w = Workload(catalog={"a": "A", "b": "B"}, clicks=[("u1", "a", 10.0), ("u2", "b", 20.0)], reviews=[],
                 source="test")  # fmt: skip
    # Each pass follows the one before at half its pace: the log spans 11 s, the rest 11 s more.
    assert [w.click(i) for i in range(6)] == [
        ("u1", "a", 10.0), ("u2", "b", 20.0), ("u1~1", "a", 21.0), ("u2~1", "b", 26.0),
        ("u1~2", "a", 26.5), ("u2~2", "b", 29.0),
    ]  # fmt: skip
    times = [w.click(i)[2] for i in range(200)]
    assert times == sorted(times) and times[-1] <= 32.0
    events = list(w.click_events("clicks", 1, 2))
    assert [e[2] for e in events] == ["u2", "u1~1"]
    assert events[0][1] == {"user_id": "u2", "item_id": "b", "event": "click", "ts": 20.0}


def test_a_recent_log_never_continues_past_the_clock() -> None:
    # The packaged sample spans seven years; passes that moved on by a span each went past the
    # present, and the workers dead-lettered those clicks as ts_in_future.
    catalog, reviews = packaged_sample()
    clicks = [(r.user, r.item, r.ts) for r in reviews]
    w = Workload(catalog=catalog, clicks=clicks, reviews=reviews, source="sample", horizon=1.5e9)
    times = [w.click(i)[2] for i in range(20 * len(clicks))]
    assert max(times) <= 1.5e9 and times[len(clicks) :] == sorted(times[len(clicks) :])
    now = Workload(catalog={"a": "A"}, clicks=[("u", "a", 100.0), ("v", "a", 200.0)], reviews=[],
                   source="t", horizon=150.0)  # fmt: skip
    assert now.click(5)[2] == 201.0  # no room after the log: later passes stay at its end


def test_workload_narrowed_keeps_the_most_clicked_items() -> None:
    clicks = [("u", "a", 1.0), ("u", "a", 2.0), ("u", "b", 3.0), ("v", "c", 4.0), ("v", "a", 5.0)]
    w = Workload(catalog={"a": "A", "b": "B", "c": "C"}, clicks=clicks, reviews=[], source="test").narrowed(1)
    assert set(w.catalog) == {"a"} and {item for _, item, _ in w.clicks} == {"a"}


def test_workload_from_given_files() -> None:
    data = Path(__file__).resolve().parents[1] / "data"
    w = load_workload(data / "amazon-2018.jsonl", data / "amazon-2014.csv")
    assert w.clicks and w.reviews and all(r.text for r in w.reviews)
    assert {item for _, item, _ in w.clicks} <= set(w.catalog)
    assert set(w.review_catalog(len(w.reviews))) == {r.item for r in w.reviews}
    assert "amazon-2018.jsonl" in w.source and "amazon-2014.csv" in w.source


def test_the_packaged_sample_stands_in_for_missing_data() -> None:
    catalog, reviews = packaged_sample()
    assert len(catalog) > 100 and len(reviews) > 100
    assert all(r.text for r in reviews) and {r.item for r in reviews} <= set(catalog)


def test_percentiles() -> None:
    stats = percentiles([10.0] * 98 + [100.0, 1000.0])
    assert stats["p50"] == 10.0 and stats["n"] == 100
    assert stats["p99"] is not None and 100.0 <= stats["p99"] <= 1000.0
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "n": 0}


def test_memory_probes_measure_this_process() -> None:
    import os

    assert peak_rss_mb(os.getpid()) >= rss_mb(os.getpid()) > 0
    assert 30.0 < traced_mb(lambda: np.ones((4, 1024, 1024), dtype=np.float64)) < 34.0


def test_cpu_meter_charges_each_group_its_own_processes() -> None:
    # Each child starts, waits for a line, works (or not), says so and waits again: the meter
    # sees only the work, and reads both children while they are still there.
    work = "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    script = "import sys, time\nsys.stdin.readline()\n{}print('done', flush=True)\nsys.stdin.readline()"
    children = {
        name: subprocess.Popen(
            [sys.executable, "-c", script.format(body)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for name, body in (("busy", work), ("idle", ""))
    }
    time.sleep(1.0)
    try:
        with CpuMeter({**{n: [c.pid] for n, c in children.items()}, "gone": [2**22 + 1]}) as meter:
            for child in children.values():
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(b"go\n")
                child.stdin.flush()
                assert child.stdout.readline() == b"done\n"
    finally:
        for child in children.values():
            child.kill()
            child.wait()
    per = meter.per_event(100)
    assert set(per) == {"busy", "idle"}  # a process that is not there is left out
    assert per["busy"] > 2.0 > per["idle"], per  # 0.4 s over 100 events is about 4 ms each


def test_profile_summary_ranks_functions_and_libraries() -> None:
    collapsed = (
        "<module> (streamrec/streams/commands/cli.py:1);learn_one (river/reco/biased_mf.py:120) 6\n"
        "<module> (streamrec/streams/commands/cli.py:1);getmany (aiokafka/consumer/consumer.py:1200) 3\n"
        "<module> (streamrec/streams/commands/cli.py:1);_learn (streamrec/streams/roles/cf/role.py:180) 1\n"
        "garbage line\n"
    )
    summary = summarize(collapsed)
    assert summary["samples"] == 10
    assert summary["functions"][0] == ["learn_one (river/reco/biased_mf.py)", 60.0]
    assert [name for name, _ in summary["libraries"]] == ["river", "aiokafka", "streamrec"]


def test_qdrant_local_mode_figures_are_positive() -> None:
    result = bench_qdrant([300, 600], lambda _: None, queries=5, budget_s=1.0)
    assert result["points"] == 600 and result["backend"] == "local"
    for run in result["runs"]:
        assert _positive(run["upsert_points_per_s"]) and _positive(run["search_qps"])
        assert _positive(run["batch_search_qps"]) and run["queries"] >= 1


def test_quick_config_shrinks_every_size() -> None:
    full, quick = BenchConfig(), BenchConfig().quick()
    assert (
        quick.events < full.events and quick.texts < full.texts and quick.memory_events < full.memory_events
    )
    assert max(quick.qdrant_sizes) < max(full.qdrant_sizes) and quick.load_seconds < full.load_seconds


def test_bench_rejects_unknown_sections(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--json", str(tmp_path / "b.json"), "--sections", "cf,gpu"])
    assert result.exit_code != 0
    assert "--sections" in result.output


@pytest.mark.broker
@pytest.mark.slow
def test_bench_quick_writes_every_figure(bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        ["bench", "--quick", "--device", "cpu", "--kafka-bootstrap", bootstrap, "--json", str(out),
         "--data-dir", str(tmp_path / "state")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())

    cf = report["cf"]
    for key in ("pipeline_events_per_s", "raw_events_per_s", "ratio"):
        assert _positive(cf[key]), key
    assert cf["deadletters"] == 0

    latency = report["latency_ms"]
    for key in ("offered_events_per_s", "p50", "p95", "p99"):
        assert _positive(latency[key]), key
    assert latency["p50"] <= latency["p95"] <= latency["p99"]
    assert _positive(latency["reviews"]["p99"]) and _positive(latency["broker_hop"]["p50"])
    assert all(run["users_unanswered"] == 0 for run in latency["loads"])
    curve = latency["curve"]
    assert [r["offered_events_per_s"] for r in curve["one_process"]] == [50.0, 200.0]
    assert [r["offered_events_per_s"] for r in curve["two_processes"]] == [50.0, 200.0]
    assert all(_positive(r["p99"]) for runs in curve.values() for r in runs)
    for run in (*latency["loads"], *curve["two_processes"], latency["reviews"]):
        cpu = run["cpu_ms_per_event"]
        assert _positive(cpu["recommender"]) and _positive(cpu["bench"]), cpu
        assert cpu["cf"] >= 0.0 and cpu["encoder"] >= 0.0, cpu
    assert _positive(latency["reviews"]["cpu_ms_per_event"]["encoder"])
    assert {"recommender", "cf", "encoder", "bench"} <= set(latency["idle_cores"])
    assert all(0.0 <= cores <= 2.0 for cores in latency["idle_cores"].values()), latency["idle_cores"]
    assert _positive(latency["loads"][0]["cores_busy"]["recommender"])
    picture = Path(report["load_curve_png"])
    assert picture.name == "bench-load.png" and picture.read_bytes()[:4] == b"\x89PNG"

    state = report["state"]
    assert [s["clicks"] for s in state["sizes"]] == [500, 2_000]
    for size in state["sizes"]:
        assert _positive(size["ranking_ms_per_user"]) and _positive(size["pause_ms"])
        assert _positive(size["serialize_ms"]) and size["checkpoint_bytes"] > 0
    assert _positive(state["ranking_growth"]) and state["sizes"][-1]["forked"]

    encoder = report["encoder"]
    assert encoder["device"] == "cpu" and encoder["model"]
    for key in ("texts_per_s", "baseline_texts_per_s", "ratio", "worker_texts_per_s"):
        assert _positive(encoder[key]), key

    qdrant = report["qdrant"]
    for key in ("points", "upsert_points_per_s", "search_qps"):
        assert _positive(qdrant[key]), key

    memory = report["memory"]
    assert set(memory) == {"cf", "encoder", "recommender"}
    for role, figures in memory.items():
        assert _positive(figures["rss_mb_at_n"]) and figures["rss_mb_at_2n"] >= figures["rss_mb_at_n"], role
        assert isinstance(figures["growth_beyond_state_pct"], float)
    assert _positive(memory["cf"]["state_mb_at_2n"]) and _positive(memory["recommender"]["state_mb_at_2n"])

    api = report["api"]
    for kind in ("stored", "computed"):
        assert _positive(api[kind]["p99"]) and not api[kind]["errors"], kind
    assert api["stored"]["answers"] == {"stored": api["stored"]["requests"]}
    assert api["computed"]["answers"] == {"computed": api["computed"]["requests"]}
    assert _positive(api["stored"]["cpu_ms_per_event"]["api"])
    gone = api["withdrawal"]
    assert gone["lists_naming_it"] > 0 and gone["lists_still_naming_it"] == 0
    assert _positive(gone["seconds_to_last_list"])
    # Restarted, seeded with another's checkpoint (a seed that cannot be read stops the process),
    # from the snapshot on the topic, and read from the beginning: each started and served.
    for start in ("read_on_s", "restart_s", "seeded_replica_s", "snapshot_replica_s", "new_replica_s"):
        assert _positive(api["replicas"][start]), start

    names = {t["target"] for t in report["targets"]}
    assert {"cf_events_per_s", "cf_ratio", "click_p99_ms", "review_p99_ms", "encoder_ratio"} <= names
    assert {"api_stored_p99_ms", "api_computed_p99_ms", "withdrawal_s"} <= names
    assert {"max_sustained_clicks_per_s", "ranking_growth", "checkpoint_pause_ms"} <= names
    assert "streamrec bench" in result.output  # the table's title
    assert table(report).row_count >= 8
    assert targets(report) == report["targets"]
