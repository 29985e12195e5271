"""Opening dataset files (plain, gzip, a zip of one file) and reading their rows."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

from streamrec.model.errors import DatasetError

__all__ = [
    "Row",
    "base_name",
    "csv_header",
    "csv_rows",
    "field_name",
    "json_rows",
    "member_name",
    "open_text",
    "sibling",
    "sniff",
    "text_lines",
]

Row = Mapping[str, Any]

# Review texts can be long; the csv module's default field limit (128 KiB) is not a data error.
csv.field_size_limit(1 << 26)


def base_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def member_name(path: Path) -> str:
    """The name of the data inside the file: a zip's member, else the name less `.gz`/`.zip`."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return zip_member(archive, path)
    return base_name(path)


def zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    members = [
        m.filename
        for m in archive.infolist()
        if not m.is_dir() and not m.filename.startswith("__MACOSX/") and not m.filename.endswith(".DS_Store")
    ]
    if len(members) != 1:
        raise DatasetError(f"{path}: a zip must hold exactly one data file, got {members[:5]!r}")
    return members[0]


def open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if magic == b"PK\x03\x04":
        archive = zipfile.ZipFile(path)
        return archive.open(zip_member(archive, path))
    return open(path, "rb")


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    # Undecodable bytes become U+FFFD: one odd character must not lose a whole review.
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors="replace", newline="")


def sniff(first_line: str) -> type[csv.Dialect]:
    if "\t" in first_line and first_line.count("\t") >= first_line.count(","):
        return csv.excel_tab
    return csv.excel


def field_name(header: str) -> str:
    """A RecBole header field `name:type` without its type."""
    return header.strip().split(":", 1)[0]


def csv_header(path: Path, delimiter: str | None = None) -> list[str]:
    with open_text(path) as stream:
        first = stream.readline()
    dialect = sniff(first)
    header = next(csv.reader([first], dialect=dialect, delimiter=delimiter or dialect.delimiter), [])
    return [h.strip() for h in header]


def csv_rows(
    path: Path,
    header: list[str] | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, Row | str]]:
    """Yield `(line, row)` where the row starts; a row is a str (what is wrong) when it cannot be split.

    Without `header`, the first line is the header.
    """
    with open_text(path, encoding) as stream:
        first = stream.readline()
        dialect = sniff(first)
        reader = csv.reader(_chain(first, stream), dialect=dialect, delimiter=delimiter or dialect.delimiter)
        line = 0
        if header is None:
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                return
            line = reader.line_num
        while True:
            start = line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                yield start, f"cannot be split into fields: {exc}"
                continue
            line = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            if len(values) != len(header):
                yield start, f"must have {len(header)} fields, got {len(values)}"
                continue
            yield start, dict(zip(header, values, strict=True))


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


def json_rows(path: Path) -> Iterator[tuple[int, Row | str]]:
    with open_text(path) as stream:
        for line, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                yield line, f"must be a JSON object, got a parse error: {exc}"
                continue
            if not isinstance(record, dict):
                yield line, f"must be a JSON object, got {type(record).__name__}"
                continue
            yield line, record


def text_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    with open_text(path, encoding) as stream:
        for line, text in enumerate(stream, start=1):
            text = text.rstrip("\r\n")
            if text.strip():
                yield line, text


def sibling(path: Path, name: str) -> Path | None:
    for candidate in (path.with_name(name), path.with_name(name + ".gz"), path.with_name(name + ".zip")):
        if candidate.is_file():
            return candidate
    return None
