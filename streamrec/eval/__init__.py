"""Offline measurement: dataset readers, the prequential protocol, baselines and peers, the report; it
drives the very objects the workers run, so the numbers it reports are theirs.

May import: model.
"""

from __future__ import annotations

from streamrec.eval.base import StreamRecommender
from streamrec.eval.datasets import FORMATS, detect_format, load_dataset
from streamrec.eval.interactions import Dataset, Interaction
from streamrec.eval.prequential import PrequentialConfig, PrequentialResult
from streamrec.eval.protocol import run_prequential
from streamrec.eval.registry import RECOMMENDERS, alternate_rows, default_recommenders
from streamrec.eval.report import write_report
from streamrec.eval.rows import parse_columns
from streamrec.eval.stream import StreamState
from streamrec.eval.uncertainty import bootstrap_intervals, seed_spread
from streamrec.eval.vectors import CachedEncoder

__all__ = [
    "FORMATS",
    "RECOMMENDERS",
    "CachedEncoder",
    "Dataset",
    "Interaction",
    "PrequentialConfig",
    "PrequentialResult",
    "StreamRecommender",
    "StreamState",
    "alternate_rows",
    "bootstrap_intervals",
    "default_recommenders",
    "detect_format",
    "load_dataset",
    "parse_columns",
    "run_prequential",
    "seed_spread",
    "write_report",
]
