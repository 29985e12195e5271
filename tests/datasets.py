"""Where the tests find the public datasets: `Settings.datasets()`, one place for every test.

`STREAMREC_DATASETS_DIR` names the directory; unset, `../shared/data` is used when it is there.
Without it, the tests that need a dataset skip and say which file they looked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.streams.bench.workload import AMAZON, MOVIELENS
from streamrec.streams.settings import Settings

__all__ = ["AMAZON", "MOVIELENS", "needs", "path_of", "require"]

ROOT = Settings().datasets()


def path_of(name: Path) -> Path | None:
    """The dataset file `name` (relative to the datasets directory), if it is there."""
    if ROOT is None or not (ROOT / name).is_file():
        return None
    return ROOT / name


def needs(name: Path) -> pytest.MarkDecorator:
    """Skip unless the dataset file `name` is there, saying where it was looked for."""
    where = ROOT / name if ROOT is not None else f"{name} under STREAMREC_DATASETS_DIR or ../shared/data"
    return pytest.mark.skipif(path_of(name) is None, reason=f"needs the public dataset {where}")


def require(name: Path) -> Path:
    """The dataset file `name`, or skip the calling test."""
    path = path_of(name)
    if path is None:
        pytest.skip(f"needs the public dataset {name} (STREAMREC_DATASETS_DIR or ../shared/data)")
    return path
