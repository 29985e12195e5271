"""Reviews whose aspects people labelled or rated: SemEval-2014 task 4 and TripAdvisor hotels.

- `load_semeval`: the SemEval-2014 ABSA XML (``Restaurants_Train_v2.xml[.gz]``,
  ``Laptop_Train_v2.xml[.gz]``): per sentence its aspect categories (restaurants) and aspect
  terms, each with the polarity a person gave it.
- `load_tripadvisor`: Wang, Lu and Zhai's TripAdvisor hotel reviews (``hotel_*.dat`` files, a
  directory or a ``.tar.gz`` of them): per review its title, text, overall rating and the
  reviewer's own rating of each aspect (value, rooms, location, cleanliness, service, sleep
  quality). Re-crawled reviews appear in several files: each review id is kept once.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.model.errors import StreamrecError

__all__ = [
    "HOTEL_ASPECTS",
    "POLARITIES",
    "LabelledSentence",
    "RatedReview",
    "load_semeval",
    "load_tripadvisor",
]

#: The three polarities measured (SemEval's fourth, "conflict", is left out, as is customary).
POLARITIES = ("negative", "neutral", "positive")

#: TripAdvisor's aspect tags, and the names streamrec's hotel aspects go by.
HOTEL_ASPECTS = {
    "Value": "value",
    "Rooms": "rooms",
    "Location": "location",
    "Cleanliness": "cleanliness",
    "Service": "service",
    "Sleep Quality": "sleep_quality",
}


@dataclass(frozen=True)
class LabelledSentence:
    """A sentence and what people read in it: category -> polarity, and (term, start, end, polarity)."""

    id: str
    text: str
    categories: dict[str, str] = field(default_factory=dict)
    terms: tuple[tuple[str, int, int, str], ...] = ()


@dataclass(frozen=True)
class RatedReview:
    """A review with its overall rating and its reviewer's rating of each aspect (1-5)."""

    id: str
    hotel: str
    title: str
    text: str
    overall: float
    aspects: dict[str, float]


def load_semeval(path: str | Path) -> list[LabelledSentence]:
    """The sentences of a SemEval-2014 task 4 XML file (plain or gzipped)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        root = ET.fromstring(raw)  # noqa: S314 (a file the user names, read locally)
    except (OSError, ET.ParseError, gzip.BadGzipFile) as exc:
        raise StreamrecError(f"{str(path)!r} must be SemEval-2014 XML (plain or .gz), got: {exc}") from None
    out: list[LabelledSentence] = []
    for node in root.iter("sentence"):
        text = node.findtext("text") or ""
        categories = {c.get("category", ""): c.get("polarity", "") for c in node.iter("aspectCategory")}
        terms = tuple(
            (t.get("term", ""), int(t.get("from", 0)), int(t.get("to", 0)), t.get("polarity", ""))
            for t in node.iter("aspectTerm")
        )
        out.append(LabelledSentence(node.get("id", str(len(out))), text, categories, terms))
    if not out:
        raise StreamrecError(f"{str(path)!r} holds no <sentence>: not a SemEval-2014 task 4 file")
    return out


_TAG = re.compile(r"^<([^>]+)>(.*)$")


def _hotel_files(path: Path) -> Iterator[tuple[str, str]]:
    if path.is_dir():
        for file in sorted(path.rglob("hotel_*.dat")):
            yield file.stem, file.read_text(encoding="utf-8", errors="replace")
        return
    try:
        with tarfile.open(path) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                name = Path(member.name)
                if member.isfile() and name.suffix == ".dat":
                    data = tar.extractfile(member)
                    if data is not None:
                        yield name.stem, data.read().decode("utf-8", errors="replace")
    except (OSError, tarfile.TarError) as exc:
        raise StreamrecError(
            f"{str(path)!r} must be a directory or a .tar.gz of TripAdvisor hotel_*.dat files, got: {exc}"
        ) from None


def load_tripadvisor(path: str | Path) -> list[RatedReview]:
    """The reviews of TripAdvisor ``hotel_*.dat`` files with an id, an overall rating and text."""
    seen: set[str] = set()
    out: list[RatedReview] = []
    for hotel, content in _hotel_files(Path(path)):
        for block in content.split("\n\n"):
            tags: dict[str, str] = {}
            for line in block.splitlines():
                match = _TAG.match(line.strip())
                if match:
                    tags[match.group(1)] = match.group(2).strip()
            rid = tags.get("Review ID")
            if not rid or rid in seen or not tags.get("Content") or not tags.get("Overall"):
                continue
            try:
                overall = float(tags["Overall"])
                rated = {
                    name: float(tags[tag])
                    for tag, name in HOTEL_ASPECTS.items()
                    if tag in tags and float(tags[tag]) > 0
                }
            except ValueError:
                continue
            seen.add(rid)
            title = tags.get("Title", "").strip('“”"')
            out.append(RatedReview(rid, hotel, title, tags["Content"], overall, rated))
    if not out:
        raise StreamrecError(f"{str(path)!r} holds no TripAdvisor review with an id, a rating and text")
    return out
