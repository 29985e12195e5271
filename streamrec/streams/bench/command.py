"""`streamrec bench`: throughput, latency, encoder, Qdrant and memory, each beside its limit."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench_command"]


def bench_command(
    json_out: Annotated[Path, typer.Option("--json", help="Write every figure to this JSON file.")],
    events: Annotated[
        int, typer.Option("--events", min=1, help="Clicks the CF pipeline and the raw river loop learn.")
    ] = 100_000,
    texts: Annotated[int, typer.Option("--texts", min=1, help="Real reviews the encoders encode.")] = 192,
    device: Annotated[
        str, typer.Option("--device", help="Encoder device: auto, cpu or cuda (the bench and the workers).")
    ] = "auto",
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option("--kafka-bootstrap", help="HOST:PORT of a Kafka to use instead of the embedded broker."),
    ] = None,
    qdrant_url: Annotated[
        str | None,
        typer.Option(
            "--qdrant-url", help="Qdrant server: benchmarked beside local mode, and used by the workers."
        ),
    ] = None,
    memory_events: Annotated[
        int,
        typer.Option("--memory-events", min=1, help="N of the memory figures: RSS after N and 2N clicks."),
    ] = 20_000,
    seconds: Annotated[
        float, typer.Option("--seconds", min=1.0, help="Seconds of each fixed latency load.")
    ] = 15.0,
    api_retained: Annotated[
        int,
        typer.Option(
            "--api-retained",
            min=1,
            help="Clicks put on the topics before an API process's start is timed (restarted, and new "
            "replicas with and without another's checkpoint).",
        ),
    ] = 1_000_000,
    slo_ms: Annotated[
        float, typer.Option("--slo-ms", help="p99 bound of a sustained click load (and of the click target).")
    ] = 100.0,
    sections: Annotated[
        str,
        typer.Option("--sections", help="Which measurements: encoder,qdrant,state,cf,memory,latency,api."),
    ] = "encoder,qdrant,state,cf,memory,latency,api",
    quick: Annotated[
        bool, typer.Option("--quick", help="Tiny sizes: seconds, for tests; no figure to quote.")
    ] = False,
    clicks_data: Annotated[
        Path | None,
        typer.Option(
            "--clicks-data",
            help="Clicks and catalog (any `streamrec eval` format) [default: ML-100K in "
            "STREAMREC_DATASETS_DIR, else the packaged sample].",
        ),
    ] = None,
    reviews_data: Annotated[
        Path | None,
        typer.Option(
            "--reviews-data",
            help="Reviews with text [default: Amazon Musical Instruments in STREAMREC_DATASETS_DIR, "
            "else the packaged sample].",
        ),
    ] = None,
    max_length: Annotated[
        int, typer.Option("--max-length", min=8, help="Encoder tokens kept per text.")
    ] = 256,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="Encoder dtype of the workers (auto, float32, bfloat16, float16); not auto: also measured "
            "beside the default.",
        ),
    ] = "auto",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Encoder weights, a local directory [default: the bundled all-MiniLM-L6-v2]."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Workers' state and logs [default: a temporary directory, removed after]."
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option("--profile", help="Record the CF and latency workers with py-spy into this directory."),
    ] = None,
) -> None:
    """Measure the pipeline on real data: CF throughput against a raw river loop, event-to-recommendation
    latency at fixed loads, the encoder against plain transformers, Qdrant, memory per role, and the
    HTTP API (stored and computed lists at paced request rates; seconds for a deleted item to leave
    every list).

    Runs on the embedded broker (or --kafka-bootstrap), prints a table and writes --json.
    Every figure is measured in the same run as the limit it is compared with, so noise from
    other work on the machine moves both.
    """
    from rich.console import Console

    from streamrec.streams.bench.report import table, targets
    from streamrec.streams.bench.suite import SECTIONS, BenchConfig, run_bench
    from streamrec.streams.bench.workload import load_workload
    from streamrec.streams.commands.logs import setup_logging
    from streamrec.streams.commands.options import fail as _fail
    from streamrec.streams.commands.options import load_settings

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        _fail(f"--device must be auto, cpu or cuda, got {device!r}")
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        _fail(f"--dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    chosen = tuple(s.strip() for s in sections.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        _fail(f"--sections must be among {','.join(SECTIONS)}, got {sections!r}")
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, qdrant_url=qdrant_url)
    setup_logging("warning")
    console = Console(stderr=True)
    config = BenchConfig(
        events=events, texts=texts, device=device, dtype=dtype, model=model, max_length=max_length,
        memory_events=memory_events, load_seconds=seconds, slo_ms=slo_ms, sections=chosen,
        profile_dir=profile, api_retained=api_retained,
    )  # fmt: skip
    if quick:
        config = replace(
            config.quick(), device=device, dtype=dtype, model=model, sections=chosen, profile_dir=profile
        )
    workload = load_workload(clicks_data, reviews_data, max(2_000, texts), settings.datasets())
    console.print(f"data: {workload.source}")
    own_dir = data_dir is None
    work = Path(tempfile.mkdtemp(prefix="streamrec-bench-")) if own_dir else Path(data_dir)  # type: ignore[arg-type]

    began = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - began:6.1f}s  {message}[/dim]")

    report = run_bench(config, settings, workload, work, say)
    report["command"] = shlex.join(["streamrec", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else None
    report["targets"] = targets(report)
    failed = [name for name, section in report.items() if isinstance(section, dict) and "error" in section]
    json_out.parent.mkdir(parents=True, exist_ok=True)
    latency = report.get("latency_ms")
    if isinstance(latency, dict) and "error" not in latency:
        from streamrec.streams.bench.plot import draw_load_curve

        drawn = draw_load_curve(latency, json_out.with_name(json_out.stem + "-load.png"))
        report["load_curve_png"] = str(drawn) if drawn else None
    json_out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    Console().print(table(report))
    load = report["machine"]
    console.print(
        f"{load['cpus']} CPUs; load average {load['load_average_start']} at the start, "
        f"{load['load_average_end']} at the end; {report['seconds']:.0f} s. JSON: {json_out}"
        + (f"; load curve: {report['load_curve_png']}" if report.get("load_curve_png") else "")
    )
    if own_dir and not failed:
        shutil.rmtree(work, ignore_errors=True)
    elif failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]; worker logs kept in {work}")
        raise typer.Exit(1)
