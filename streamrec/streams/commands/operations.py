"""The operator's commands beside a deployment: `topics`, `holdings` and `schema`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from streamrec.streams.commands.logs import setup_logging
from streamrec.streams.commands.options import BootstrapOpt, DataDirOpt, PrefixOpt, fail, load_settings

__all__ = ["holdings", "schema", "topics"]


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
        fail("pass --kafka-bootstrap HOST:PORT")
    try:
        created = ensure_topics(settings, timeout=timeout)
    except BrokerError as exc:
        fail(str(exc))
    for name in Topics.from_settings(settings).all():
        typer.echo(f"{name}: {'created' if name in created else 'exists'}")


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
        fail("pass --kafka-bootstrap HOST:PORT (the broker of the running deployment)")
    found = False
    for holding in user_holdings(settings, user, timeout=timeout):
        what = ", ".join(holding.found) if holding.found else "nothing"
        note = f" ({holding.note})" if holding.note else ""
        typer.echo(f"{holding.store}: {what}{note}")
        found = found or (bool(holding.found) and not holding.expires)
    raise typer.Exit(3 if found else 0)


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
            fail(f"--topic must be one of {', '.join(schemas)}, got {topic!r}")
        typer.echo(json.dumps(schemas[topic], indent=2))
    else:
        typer.echo(json.dumps(schemas, indent=2))
