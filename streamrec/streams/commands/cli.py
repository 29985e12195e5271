"""The `streamrec` command line."""

from __future__ import annotations

import os

import typer

from streamrec.streams.commands.deployment import demo, up, worker
from streamrec.streams.commands.operations import holdings, schema, topics

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

# Registered in this order, which `streamrec --help` lists them in.
for _command in (worker, up, topics, holdings, schema, demo):
    app.command()(_command)


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
