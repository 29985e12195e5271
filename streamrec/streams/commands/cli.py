"""The `streamrec` command line."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from streamrec.model.errors import StreamrecError

__all__ = ["app", "main"]

app = typer.Typer(
    help=(
        "streamrec: a real-time recommender on Kafka. Events in (clicks, reviews, items), "
        "recommendations out, online CF + BERT text vectors + Qdrant in between.\n\n"
        "Every option is also an environment variable STREAMREC_<NAME> (`streamrec config` lists them)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("streamrec")

# Options shared by the commands that run the stack. Defaults are None so that
# unset options fall through to the environment (read by Settings alone).
PortOpt = Annotated[
    int | None,
    typer.Option("--port", help="Embedded broker port, 0 for any free one [env STREAMREC_PORT; default 0]"),
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--kafka-bootstrap",
        help="HOST:PORT of an external Kafka instead of the embedded broker [env STREAMREC_KAFKA_BOOTSTRAP]",
    ),
]
QdrantUrlOpt = Annotated[
    str | None,
    typer.Option("--qdrant-url", help="Qdrant server URL instead of local mode [env STREAMREC_QDRANT_URL]"),
]
QdrantKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--qdrant-api-key",
        help="Qdrant API key; prefer the environment variable STREAMREC_QDRANT_API_KEY",
        show_default=False,
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Local state directory [env STREAMREC_DATA_DIR; default .streamrec]"),
]
PrefixOpt = Annotated[
    str | None,
    typer.Option("--topic-prefix", help="Prefix of topic and group names [env STREAMREC_TOPIC_PREFIX]"),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", help="Prometheus endpoint port [env STREAMREC_METRICS_PORT; default 9464]"
    ),
]
MetricsHostOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics-host",
        help="Prometheus endpoint bind address [env STREAMREC_METRICS_HOST; default 127.0.0.1]",
    ),
]

ApiHostOpt = Annotated[
    str | None,
    typer.Option("--api-host", help="HTTP API bind address [env STREAMREC_API_HOST; default 127.0.0.1]"),
]
ApiPortOpt = Annotated[
    int | None,
    typer.Option(
        "--api-port", help="HTTP API port, 0 for any free one [env STREAMREC_API_PORT; default 8000]"
    ),
]
RulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="TOML (or .json) file of rules every list obeys: exclude/require tags, boost, bury, pin; "
        "checked at start [env STREAMREC_RULES]",
    ),
]


def load_settings(**overrides: Any) -> Any:
    """Settings from the environment, with the options given on the command line on top."""
    from streamrec.streams.settings import Settings

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        _fail("invalid settings: " + "; ".join(problems))


class _Repeats(logging.Filter):
    """Lets one of a run of identical messages through per `interval` seconds.

    While a broker is away, clients log the same connection error every 100 ms.
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = record.created
        if now - self._last.get(key, 0.0) < self.interval:
            return False
        self._last[key] = now
        return True


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    repeats = _Repeats()
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeats)
    for noisy in ("aiokafka", "faust", "mode", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _fail(message: str, code: int = 1) -> Any:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
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
        _fail("a worker needs Kafka: pass --kafka-bootstrap HOST:PORT (or use `streamrec up`)")
    from streamrec.streams.worker import run_worker

    try:
        run_worker(settings, [r.strip() for r in roles.split(",") if r.strip()], settings.kafka_bootstrap)
    except (StreamrecError, ValueError) as exc:
        _fail(str(exc))


@app.command()
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
                _fail(f"the worker exited with code {worker_process.process.returncode} before it was ready")
            stop.wait(0.2)
        while not stop.is_set():
            if worker_process.process.poll() is not None:
                code = worker_process.process.returncode or 1
                typer.secho(f"error: the worker exited with code {code}", fg=typer.colors.RED, err=True)
                break
            stop.wait(0.5)
    except InfrastructureError as exc:
        _fail(str(exc))
    finally:
        typer.echo("stopping...", err=True)
        stack.stop()
    typer.echo("stopped", err=True)
    raise typer.Exit(code)


@app.command()
def topics(
    kafka_bootstrap: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions of new topics [env STREAMREC_PARTITIONS; default 3]")
    ] = None,
    deadletter_retention_days: Annotated[
        float | None,
        typer.Option(
            help="Days `deadletter` keeps a message, forgotten users' included "
            "[env STREAMREC_DEADLETTER_RETENTION_DAYS; default 14]"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Kafka to answer")] = 60.0,
) -> None:
    """Create streamrec's topics on a Kafka cluster; existing ones keep their partitions and data,
    and get the settings streamrec needs of them (e.g. `recommendations` compacted, the dead
    letters' retention)."""
    from streamrec.streams.errors import BrokerError
    from streamrec.streams.kafka.topics import Topics, ensure_topics

    settings = load_settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        partitions=partitions,
        deadletter_retention_days=deadletter_retention_days,
    )
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap:
        _fail("pass --kafka-bootstrap HOST:PORT")
    try:
        created = ensure_topics(settings, timeout=timeout)
    except BrokerError as exc:
        _fail(str(exc))
    for name in Topics.from_settings(settings).all():
        typer.echo(f"{name}: {'created' if name in created else 'exists'}")


@app.command()
def holdings(
    user: Annotated[str, typer.Argument(help="The user id, as in their events")],
    kafka_bootstrap: BootstrapOpt = None,
    topic_prefix: PrefixOpt = None,
    data_dir: DataDirOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Kafka to answer")] = 30.0,
) -> None:
    """Read each store for what it holds of USER: the roles' checkpoints, the compacted topics
    (latest message per key), dead letters keyed by the user, Qdrant. After a `forget` request it
    finds nothing but dead letters, which the topic's retention deletes; exit status 3 if it finds
    anything else. Run it with the workers stopped: local-mode Qdrant serves one process, and a
    running worker's checkpoint may be seconds old."""
    from streamrec.streams.commands.holdings import user_holdings

    settings = load_settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=data_dir)
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap:
        _fail("pass --kafka-bootstrap HOST:PORT (the broker of the running deployment)")
    found = False
    for holding in user_holdings(settings, user, timeout=timeout):
        what = ", ".join(holding.found) if holding.found else "nothing"
        note = f" ({holding.note})" if holding.note else ""
        typer.echo(f"{holding.store}: {what}{note}")
        found = found or (bool(holding.found) and not holding.expires)
    raise typer.Exit(3 if found else 0)


@app.command()
def schema(
    topic: Annotated[
        str | None, typer.Option(help="Only this topic's schema (clicks, reviews, items, forget, ...)")
    ] = None,
) -> None:
    """Print the JSON Schema of every topic's messages (the contract for any Kafka client)."""
    from streamrec.streams.contract import topic_schemas

    schemas = topic_schemas()
    if topic is not None:
        if topic not in schemas:
            _fail(f"--topic must be one of {', '.join(schemas)}, got {topic!r}")
        typer.echo(json.dumps(schemas[topic], indent=2))
    else:
        typer.echo(json.dumps(schemas, indent=2))


@app.command()
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
        _fail(str(exc))
    raise typer.Exit(code)


def _register_optional() -> None:
    import importlib
    import importlib.util

    for name, module, function in (
        ("eval", "streamrec.streams.commands.evaluate", "eval_command"),
        ("opinions", "streamrec.streams.commands.opinions", "opinions_command"),
        ("aspects", "streamrec.streams.commands.aspects", "aspects_command"),
        ("finetune", "streamrec.streams.commands.finetune", "finetune_command"),
        ("bench", "streamrec.streams.bench.command", "bench_command"),
        ("config", "streamrec.streams.commands.config", "config_command"),
    ):
        if importlib.util.find_spec(module) is not None:
            app.command(name)(getattr(importlib.import_module(module), function))


_register_optional()


def main() -> None:
    # torch's OpenMP threads spin while they wait unless told otherwise, which halves the
    # encoder's speed on a machine whose cores are shared; set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


if __name__ == "__main__":
    main()
