"""A catalog as read from a file (`Catalog`), built one entry per item id as its rows are read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamrec.model.errors import DatasetError

__all__ = ["Catalog"]

#: The encoder reads 128 tokens of a text (a few hundred characters): longer descriptions are
#: cut here, so that a catalog of long texts costs neither memory nor tokenizer time for nothing.
MAX_TEXT_CHARS = 2000


@dataclass
class Catalog:
    """What a catalog file says of its items.

    Examples
    --------
    >>> catalog = Catalog(Path("items.csv"), "csv", texts={"a": "A. About a"}, titles={"a": "A"})
    >>> sorted(catalog.items), catalog.n_duplicates
    (['a'], 0)
    """

    path: Path
    format: str
    #: The text the encoder reads per item: title, description, categories or tags.
    texts: dict[str, str] = field(default_factory=dict)
    #: A short display title per item, where one could be found.
    titles: dict[str, str] = field(default_factory=dict)
    #: Items whose entry has a description (beyond a title and tags).
    described: set[str] = field(default_factory=set)
    n_rows: int = 0
    #: Rows whose id an earlier row had (the entry with the most text is kept).
    n_duplicates: int = 0
    n_bad: int = 0
    #: First few skipped rows' messages, to show what `skip_bad` dropped.
    bad_examples: list[str] = field(default_factory=list)

    @property
    def items(self) -> set[str]:
        """Every item the catalog says something of."""
        return set(self.texts) | set(self.titles)


class Entries:
    """The catalog being read: one entry per id, bad rows counted or raised."""

    def __init__(self, path: Path, fmt: str, skip_bad: bool) -> None:
        self.catalog = Catalog(path, fmt)
        self.skip_bad = skip_bad
        self._sizes: dict[str, int] = {}

    def bad(self, line: int, message: str) -> None:
        text = f"{self.catalog.path}:{line}: {message}"
        if not self.skip_bad:
            raise DatasetError(text + " (skip such rows with --skip-bad)")
        self.catalog.n_bad += 1
        if len(self.catalog.bad_examples) < 5:
            self.catalog.bad_examples.append(text)

    def add(self, item: str, text: str, title: str, described: bool = False) -> None:
        """One entry of `item`; of entries repeating an id, the one with the most text is kept."""
        # Cut at a fixed length: see MAX_TEXT_CHARS.
        text = text[:MAX_TEXT_CHARS].rstrip()
        catalog = self.catalog
        if item in self._sizes:
            catalog.n_duplicates += 1
            if len(text) <= self._sizes[item]:
                return
        self._sizes[item] = len(text)
        for values, value in ((catalog.texts, text), (catalog.titles, title)):
            if value:
                values[item] = value
            else:
                values.pop(item, None)
        if described:
            catalog.described.add(item)
        else:
            catalog.described.discard(item)
