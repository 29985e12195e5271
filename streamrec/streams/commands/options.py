"""The options shared by the commands that run the stack, and the settings they make."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

__all__ = [
    "ApiHostOpt",
    "ApiPortOpt",
    "BootstrapOpt",
    "DataDirOpt",
    "MetricsHostOpt",
    "MetricsPortOpt",
    "PortOpt",
    "PrefixOpt",
    "QdrantKeyOpt",
    "QdrantUrlOpt",
    "RulesOpt",
    "fail",
    "load_settings",
]

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
        fail("invalid settings: " + "; ".join(problems))


def fail(message: str, code: int = 1) -> Any:
    """Print `message` as an error on stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
