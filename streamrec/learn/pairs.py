"""Training pairs from a shop's own interactions: which texts should read alike.

A pair `(anchor, positive)` says two texts belong together by what people did:

* ``next``: the text of what a user took or wrote, and the text of the next item they took;
* ``review``: a review, and its item's text;

in the first `train_share` of the stream (time order), never after it. An item's text is its
catalog text; an item without one is described by one of its reviews by another user (drawn
with a fixed seed), as the recommender describes it by the reviews it folds. A review of 1-2
stars is not a positive: a user who panned an item did not want it, and a review that pans it
is not what the item is.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from streamrec.eval.interactions import Dataset, Interaction
from streamrec.model.text.opinions import readable
from streamrec.model.text.sentiment import rating_label

__all__ = ["Pairs", "build_pairs", "split_at"]


@dataclass
class Pairs:
    """Anchors and positives, row by row, and what they were made of."""

    anchors: list[str] = field(default_factory=list)
    positives: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.anchors)

    def add(self, anchor: str, positive: str, kind: str) -> None:
        self.anchors.append(anchor)
        self.positives.append(positive)
        self.kinds.append(kind)

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.kinds))

    def sample(self, n: int, seed: int) -> Pairs:
        """At most `n` pairs, drawn without replacement with `seed` (all, shuffled, when fewer)."""
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        out = Pairs()
        for i in order[:n]:
            out.add(self.anchors[i], self.positives[i], self.kinds[i])
        return out


def split_at(events: Sequence[Interaction], train_share: float) -> int:
    """The index of the first event after the training share of the stream (time order)."""
    if not 0.0 < train_share <= 1.0:
        raise ValueError(f"train_share must be in (0, 1], got {train_share!r}")
    return int(len(events) * train_share)


def build_pairs(dataset: Dataset, train_share: float = 0.8, seed: int = 0) -> Pairs:
    """Pairs from the first `train_share` of `dataset`'s events; see the module's docstring.

    >>> from pathlib import Path
    >>> events = [Interaction("ann", "amp", 1.0, 5.0, "Warm clean tone."),
    ...           Interaction("bob", "amp", 2.0, 4.0, "Loud and clear."),
    ...           Interaction("ann", "cable", 3.0, 5.0, None),
    ...           Interaction("bob", "cable", 4.0, 1.0, "Broke at once.")]
    >>> data = Dataset("toy", Path("toy"), "csv", events, item_texts={"cable": "Guitar cable, 3 m"})
    >>> pairs = build_pairs(data, train_share=1.0)
    >>> sorted(zip(pairs.kinds, pairs.anchors, pairs.positives))  # doctest: +NORMALIZE_WHITESPACE
    [('next', 'Warm clean tone.', 'Guitar cable, 3 m'),
     ('review', 'Loud and clear.', 'Warm clean tone.'),
     ('review', 'Warm clean tone.', 'Loud and clear.')]
    """
    rng = random.Random(seed)
    train = dataset.interactions[: split_at(dataset.interactions, train_share)]
    reviews: dict[str, list[tuple[str, str]]] = {}  # item -> [(author, text)] of reviews not panning it
    for e in train:
        if e.text and rating_label(e.rating) != 0:
            reviews.setdefault(e.item, []).append((e.user, readable(e.text)))

    def describe(item: str, besides: str) -> str | None:
        """The item's text: its catalog text, else a review of it by someone other than `besides`."""
        text = dataset.item_texts.get(item)
        if text:
            return text
        others = [t for author, t in reviews.get(item, ()) if author != besides]
        return rng.choice(others) if others else None

    pairs = Pairs()
    last: dict[str, Interaction] = {}
    for e in train:
        panned = rating_label(e.rating) == 0
        if e.text and not panned:
            item_text = describe(e.item, e.user)
            if item_text:
                pairs.add(readable(e.text), item_text, "review")
        before = last.get(e.user)
        if before is not None and before.item != e.item and not panned:
            anchor = readable(before.text) if before.text else describe(before.item, e.user)
            positive = describe(e.item, e.user)
            if anchor and positive and anchor != positive:
                pairs.add(anchor, positive, "next")
        if not panned:
            last[e.user] = e
    return pairs
