"""Which encoder's text vectors serve, and those of a new encoder gathered until they replace them.

Vectors of two encoders live in two spaces (possibly of different dimensions): a score that
compared them would mean nothing. So a recommender serves one encoder's vectors, the active
version, and keeps a new encoder's apart (staged) while that encoder reads the catalog and the
reviews again; once it has, the staged vectors replace the active ones at once, and the old
version is retired: any of its vectors that still arrive (a topic replayed before compaction) are
passed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from streamrec.model.base import FloatArray

__all__ = ["Route", "StagedText", "TextVersions"]

#: Where a text vector goes: it serves, it waits for a switch, or it is of a retired encoder.
Route = Literal["active", "staged", "stale"]


@dataclass
class StagedText:
    """A new encoder's vectors, gathered while another's serve."""

    version: str
    dim: int
    #: Each item's catalog text vector.
    catalog: dict[str, FloatArray] = field(default_factory=dict)
    #: Each review's `(item, rating, vector)`, by its key.
    reviews: dict[bytes, tuple[str, float | None, FloatArray]] = field(default_factory=dict)


class TextVersions:
    """The active encoder version, the staged one, and the retired ones.

    The first version seen becomes active; a vector without a version (offline evaluation, or
    a message older than versions) belongs to whichever is active.

    Examples
    --------
    >>> import numpy as np
    >>> versions = TextVersions()
    >>> versions.route("minilm", 384), versions.active
    ('active', 'minilm')
    >>> versions.route("tuned", 64), versions.staged.version
    ('staged', 'tuned')
    >>> versions.staged.catalog["x"] = np.zeros(64, dtype=np.float32)
    >>> staged = versions.switch("tuned")
    >>> versions.active, sorted(versions.retired), versions.route("minilm", 384), len(staged.catalog)
    ('tuned', ['minilm'], 'stale', 1)
    """

    def __init__(self) -> None:
        self.active = ""
        self.staged: StagedText | None = None
        self.retired: set[str] = set()
        #: Switches made, for logs and metrics.
        self.switches = 0

    def route(self, version: str, dim: int) -> Route:
        """Where a vector of `version` (of `dim` numbers) goes; a new version starts a staging
        (and one staged before it that never completed is dropped)."""
        if not version or version == self.active:
            return "active"
        if not self.active:
            self.active = version
            return "active"
        if version in self.retired:
            return "stale"
        if self.staged is None or self.staged.version != version:
            if self.staged is not None:
                self.retired.add(self.staged.version)
            self.staged = StagedText(version, dim)
        return "staged"

    def switch(self, version: str) -> StagedText:
        """Make the staged `version` active; what was gathered for it."""
        staged = self.staged
        if staged is None or staged.version != version:
            raise ValueError(f"{version!r} is not staged (staged: {staged.version if staged else None!r})")
        self.retired.add(self.active)
        self.retired.discard(version)
        self.active, self.staged = version, None
        self.switches += 1
        return staged

    def settle(self, version: str) -> bool:
        """The encoder now writing is `version`, and it has read everything: a staged version other
        than it will never complete, and is dropped. True if `version` is staged (time to switch)."""
        if self.staged is None or self.staged.version == version:
            return self.staged is not None
        if version == self.active:
            self.retired.add(self.staged.version)
            self.staged = None
        return False
