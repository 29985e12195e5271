"""CPU time each process of a measurement spent on it, per event and in cores: what a shop plans by.

Children a process waited for (a model refit in a forked child) count towards it, so work moved
off the event loop is not hidden.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType

import psutil

__all__ = ["CpuMeter"]


def _cpu_s(process: psutil.Process) -> float | None:
    try:
        t = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(t.user + t.system + t.children_user + t.children_system)


class CpuMeter:
    """CPU seconds of named groups of processes (a role's processes) over a `with` block.

    >>> import os
    >>> with CpuMeter({"this": [os.getpid()]}) as meter:
    ...     _ = sum(i * i for i in range(200_000))
    >>> meter.per_event(1000)["this"] > 0 and 0 < meter.cores()["this"] <= 1.1
    True
    """

    def __init__(self, pids: Mapping[str, Iterable[int]]) -> None:
        self._processes: dict[str, list[psutil.Process]] = {}
        for name, group in pids.items():
            for pid in group:
                try:
                    self._processes.setdefault(name, []).append(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
        self._start: dict[tuple[str, int], float | None] = {}
        self._started = 0.0
        self.seconds: dict[str, float] = {}
        self.wall_s = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = {(name, p.pid): _cpu_s(p) for name, group in self._processes.items() for p in group}
        self._started = time.monotonic()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall_s = time.monotonic() - self._started
        for name, group in self._processes.items():
            for process in group:
                start, end = self._start.get((name, process.pid)), _cpu_s(process)
                if start is not None and end is not None:
                    self.seconds[name] = self.seconds.get(name, 0.0) + end - start

    def per_event(self, events: int) -> dict[str, float]:
        """Milliseconds of CPU per event, by process name (processes that ended are left out)."""
        if events <= 0:
            return {}
        return {name: 1000.0 * s / events for name, s in self.seconds.items()}

    def cores(self) -> dict[str, float]:
        """Cores each group kept busy on average over the block (1.0: one core all the time)."""
        if self.wall_s <= 0:
            return {}
        return {name: s / self.wall_s for name, s in self.seconds.items()}
