"""The commands that run the stack: `worker` (some roles), `up` (all of it) and `demo` (on a sample)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from streamrec.model.errors import StreamrecError
from streamrec.streams.commands.logs import setup_logging
from streamrec.streams.commands.options import (
    ApiHostOpt,
    ApiPortOpt,
    BootstrapOpt,
    DataDirOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    PortOpt,
    PrefixOpt,
    QdrantKeyOpt,
    QdrantUrlOpt,
    RulesOpt,
    fail,
    load_settings,
)

__all__ = ["demo", "up", "worker"]


def worker(
    roles: Annotated[
        str,
        typer.Argument(
            help="Comma-separated roles to run in this process: cf, encoder, recommender, api (the HTTP API)"
        ),
    ],
    kafka_bootstrap: BootstrapOpt = None,
    qdrant_url: QdrantUrlOpt = None,
    qdrant_api_key: QdrantKeyOpt = None,
    data_dir: DataDirOpt = None,
    topic_prefix: PrefixOpt = None,
    metrics_host: MetricsHostOpt = None,
    metrics_port: MetricsPortOpt = None,
    rules: RulesOpt = None,
    api_host: ApiHostOpt = None,
    api_port: ApiPortOpt = None,
) -> None:
    """Run one or more roles against a running Kafka, until SIGTERM or Ctrl-C.

    Roles scale separately: run several processes of a role and Kafka's consumer
    groups share the partitions among them. The encoder can run alone on a GPU machine.
    Each api process answers for every user (it reads every partition), so it scales by adding
    processes behind a load balancer.
    """
    settings = load_settings(
        kafka_bootstrap=kafka_bootstrap,
        qdrant_url=qdrant_url,
        qdrant_api_key=qdrant_api_key,
        data_dir=data_dir,
        topic_prefix=topic_prefix,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        rules=rules,
        api_host=api_host,
        api_port=api_port,
    )
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap:
        fail("a worker needs Kafka: pass --kafka-bootstrap HOST:PORT (or use `streamrec up`)")
    from streamrec.streams.worker import run_worker

    try:
        run_worker(settings, [r.strip() for r in roles.split(",") if r.strip()], settings.kafka_bootstrap)
    except (StreamrecError, ValueError) as exc:
        fail(str(exc))


def up(
    port: PortOpt = None,
    kafka_bootstrap: BootstrapOpt = None,
    qdrant_url: QdrantUrlOpt = None,
    qdrant_api_key: QdrantKeyOpt = None,
    data_dir: DataDirOpt = None,
    topic_prefix: PrefixOpt = None,
    metrics_host: MetricsHostOpt = None,
    metrics_port: MetricsPortOpt = None,
    rules: RulesOpt = None,
    api_host: ApiHostOpt = None,
    api_port: ApiPortOpt = None,
) -> None:
    """Run the whole stack in the foreground until Ctrl-C or SIGTERM.

    Starts the embedded Kafka-compatible broker (unless --kafka-bootstrap is given),
    creates the topics and runs every role, the HTTP API included. Prints the bootstrap address,
    the metrics URL, the API's URL, and a line containing 'ready' once every worker can process
    events.
    """
    from streamrec.streams.errors import InfrastructureError
    from streamrec.streams.stack import Stack
    from streamrec.streams.worker import ROLES

    settings = load_settings(
        port=port,
        kafka_bootstrap=kafka_bootstrap,
        qdrant_url=qdrant_url,
        qdrant_api_key=qdrant_api_key,
        data_dir=data_dir,
        topic_prefix=topic_prefix,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        rules=rules,
        api_host=api_host,
        api_port=api_port,
    )
    setup_logging(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = Stack(settings, log_dir=None)
    code = 0
    try:
        bootstrap = stack.start_broker()
        typer.echo(f"kafka bootstrap: {bootstrap}", err=False)
        worker_process = stack.start_worker(ROLES)
        typer.echo(f"metrics: {worker_process.metrics_url}")
        typer.echo(f"api: {worker_process.api_url} (docs: {worker_process.api_url}/docs)")
        while not stop.is_set():
            if worker_process.is_ready():
                typer.echo(f"ready: roles {', '.join(worker_process.roles)} joined their groups")
                break
            if worker_process.process.poll() is not None:
                fail(f"the worker exited with code {worker_process.process.returncode} before it was ready")
            stop.wait(0.2)
        while not stop.is_set():
            if worker_process.process.poll() is not None:
                code = worker_process.process.returncode or 1
                typer.secho(f"error: the worker exited with code {code}", fg=typer.colors.RED, err=True)
                break
            stop.wait(0.5)
    except InfrastructureError as exc:
        fail(str(exc))
    finally:
        typer.echo("stopping...", err=True)
        stack.stop()
    typer.echo("stopped", err=True)
    raise typer.Exit(code)


def demo(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    users: Annotated[int, typer.Option(help="Users whose history and recommendations are printed")] = 3,
    limit: Annotated[int | None, typer.Option(help="Replay only the first N reviews of the sample")] = None,
    rate: Annotated[
        float, typer.Option(help="Clicks and reviews per second to replay (0: as fast as possible)")
    ] = 30.0,
    api_port: Annotated[
        int, typer.Option("--api-port", help="HTTP API port while the demo runs (0: any free one)")
    ] = 0,
) -> None:
    """Run the whole pipeline on a real sample and show what it recommends.

    Starts an embedded broker, Qdrant in local mode and the offline MiniLM encoder;
    replays a slice of Amazon reviews as item, click and review events; consumes the
    recommendations; prints a few users' history and recommendations and a summary.
    """
    from streamrec.streams.commands.demo import run_demo

    settings = load_settings(port=port, data_dir=data_dir, api_port=api_port)
    setup_logging("warning")
    try:
        code = run_demo(settings, show_users=users, limit=limit, rate=rate)
    except StreamrecError as exc:
        fail(str(exc))
    raise typer.Exit(code)
