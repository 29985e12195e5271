"""Every setting as documentation: a Markdown table (the README's) or an env file, from `Settings` itself.

Generated rather than written, so the documentation cannot drift from the code: a test
compares the README's table with `settings_table()`.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from streamrec.streams.settings import Settings, env_name

__all__ = ["SettingDoc", "config_command", "env_file", "settings_docs", "settings_table"]


@dataclass(frozen=True)
class SettingDoc:
    """One leaf setting, as the user meets it."""

    path: tuple[str, ...]
    env: str
    option: str | None
    default: Any
    secret: bool
    values: str
    description: str


def _is_group(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _members(annotation: Any) -> list[Any]:
    """The types of an annotation, `X | None` unpacked."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _bounds(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                parts.append(f"{sign} {getattr(meta, attr)}")
    return ", ".join(parts)


def _values(field: FieldInfo) -> str:
    (kind, *_) = _members(field.annotation) or [Any]
    if get_origin(kind) is Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(kind))
    names = {
        bool: "true/false",
        int: "integer",
        float: "number",
        str: "text",
        list: "JSON list",
        dict: "JSON object",
        Path: "path",
        SecretStr: "secret text",
    }
    name = names.get(get_origin(kind) or kind, getattr(kind, "__name__", str(kind)))
    bounds = _bounds(field)
    return f"{name} {bounds}" if bounds else name


def _cli_options() -> dict[str, str]:
    """Top-level setting name -> its command-line option, read from the registered commands."""
    # Imported here: the CLI registers this module's command while it is being imported.
    import typer.main

    from streamrec.streams.commands.cli import app

    fields = set(Settings.model_fields)
    options: dict[str, str] = {}
    group = typer.main.get_command(app)
    for command in getattr(group, "commands", {}).values():
        for param in command.params:
            if param.name in fields and param.opts and param.opts[0].startswith("--"):
                options.setdefault(param.name, param.opts[0])
    return options


def _walk(model: type[BaseModel], prefix: tuple[str, ...], options: dict[str, str]) -> Iterator[SettingDoc]:
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if _is_group(field.annotation):
            yield from _walk(field.annotation, path, options)
            continue
        default = field.get_default(call_default_factory=True)
        yield SettingDoc(
            path=path,
            env=env_name(*path),
            option=options.get(name) if not prefix else None,
            default=default,
            secret=SecretStr in _members(field.annotation),
            values=_values(field),
            description=field.description or "",
        )


def settings_docs() -> list[SettingDoc]:
    """Every leaf setting, groups walked in declaration order."""
    return list(_walk(Settings, (), _cli_options()))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))  # as the environment takes it
    return str(value)


def _default_cell(doc: SettingDoc) -> str:
    if doc.default is None:
        return "none"
    if doc.secret:
        return "(secret)"
    text = _plain(doc.default)
    return f"`{text}`" if text else '`""`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    """The Markdown table of every setting (the README's Configuration section)."""
    lines = [
        "| environment variable | CLI option | default | values | description |",
        "|---|---|---|---|---|",
    ]
    for doc in settings_docs():
        option = f"`{doc.option}`" if doc.option else ""
        lines.append(
            f"| `{doc.env}` | {option} | {_default_cell(doc)} | {doc.values} | {_cell(doc.description)} |"
        )
    return "\n".join(lines) + "\n"


def env_file() -> str:
    """Every setting as an env file; settings without a default stay commented out."""
    out = []
    for doc in settings_docs():
        out.append(f"# {doc.description}" + (f" [{doc.option}]" if doc.option else ""))
        if doc.default is None or doc.secret:
            out.append(f"# {doc.env}=")
        else:
            out.append(f"{doc.env}={_plain(doc.default)}")
    return "\n".join(out) + "\n"


def config_command(
    markdown: bool = typer.Option(
        True, "--markdown/--env", help="A Markdown table (as in the README), or an env file to edit."
    ),
) -> None:
    """Print every setting: environment variable, CLI option, default and meaning."""
    typer.echo(settings_table() if markdown else env_file(), nl=False)
