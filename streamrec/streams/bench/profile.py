"""Where a worker spends its time during a measurement: py-spy, attached by process id.

Optional (`--profile DIR`): py-spy samples the worker from outside, so the worker runs
unchanged, and writes collapsed stacks (`DIR/<name>.txt`, the input of flamegraph tools).
`summary` ranks functions by the share of samples in which they were running (self) and
libraries by the share of samples spent in their code.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Profile", "summarize"]

log = logging.getLogger(__name__)
TOP = 12


class Profile:
    """Records `pid` with py-spy while the `with` block runs, when `directory` is given."""

    def __init__(self, pid: int, directory: Path | None, name: str, rate: int = 100) -> None:
        self.pid = pid
        self.path = directory / f"{name}.txt" if directory is not None else None
        self.rate = rate
        self.summary: dict[str, Any] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        if self.path is None:
            return self
        # Installed beside this interpreter (a virtual environment that is not on PATH) or on PATH.
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if spy is None:
            log.warning("py-spy is not installed: no profile")
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [spy, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--nonblocking", "--output", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is None or self.path is None:
            return
        process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self.path.is_file():
            self.summary = {"file": str(self.path), **summarize(self.path.read_text())}


def summarize(collapsed: str, top: int = TOP) -> dict[str, Any]:
    """Top functions (self share) and libraries (share of leaf samples) of collapsed stacks.

    >>> s = summarize("main (a.py:1);learn_one (river/mf.py:9) 3\\nmain (a.py:1);poll (aiokafka/c.py:2) 1")
    >>> s["samples"], s["functions"][0], s["libraries"][0]
    (4, ['learn_one (river/mf.py)', 75.0], ['river', 75.0])
    """
    functions: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.rsplit(";", 1)[-1]
        functions[_without_line(leaf)] += count
        libraries[_library(leaf)] += count
    if total == 0:
        return {"samples": 0, "functions": [], "libraries": []}

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100.0 * count / total, 1)] for name, count in counter.most_common(top)]

    return {"samples": total, "functions": share(functions), "libraries": share(libraries)}


def _without_line(frame: str) -> str:
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})"


def _library(frame: str) -> str:
    _, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if not path:
        return frame
    parts = Path(path).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        return rest[0] if rest else path
    return parts[0] if len(parts) > 1 else "python"
