"""Items' CF vectors in the index: what CF learned, blended with what their content predicts while
they are young, so that a new item takes part in collaborative ranking before its first take."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.cf.content import ContentToCF
from streamrec.model.index import MemoryIndex

__all__ = ["GeneratedCF"]


class GeneratedCF:
    """Keeps the index's `cf` space: each item's CF vector as CF learned it, blended with the one
    its content (text vector, then its vectors of other modalities) predicts through `ContentToCF`
    while the item has fewer than `full_takes` interactions, or that one alone before CF learned
    anything of it.

    Parameters
    ----------
    index
        Whose `cf` space this keeps, and whose content spaces it reads.
    modalities
        The other modalities an item's content holds, by name: dimension.
    cf_dim
        Dimension of CF vectors.
    takes
        An item's interactions so far.
    full_takes
        Interactions from which an item's own CF vector is used alone; None: no content map, the
        index holds what CF learned.

    Examples
    --------
    >>> index = MemoryIndex({"text": (2, "cosine"), "cf": (3, "dot")})
    >>> placed = GeneratedCF(index, {}, 3, lambda item: 0, full_takes=None)
    >>> placed.learned(["a"], np.ones((1, 3), dtype=np.float32)); index.get("cf", ["a"])["a"].tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        index: MemoryIndex,
        modalities: Mapping[str, int],
        cf_dim: int,
        takes: Callable[[str], int],
        full_takes: float | None = 10.0,
    ) -> None:
        self.index = index
        self.modalities = dict(modalities)
        self.cf_dim = cf_dim
        self.takes = takes
        self.full_takes = full_takes
        self.content: ContentToCF | None = None
        self._fits = 0
        self.restart(index.spaces["text"].dim)
        #: Each item's CF vector as CF learned it (the index holds it blended, while the item is young).
        self._learned: dict[str, FloatArray] = {}
        #: Items with content and fewer interactions than `full_takes`.
        self._young: set[str] = set()
        #: Items whose CF vector in the index changed in a refit of the content map, for a view to follow.
        self.moved: set[str] = set()

    def restart(self, text_dim: int) -> None:
        """A content map that reads text vectors of `text_dim` numbers, learned from nothing yet."""
        if self.full_takes is not None:
            content_dim = text_dim + sum(self.modalities.values())
            self.content = ContentToCF(content_dim, self.cf_dim, full_takes=self.full_takes)
            self._fits = 0

    def learned(self, item_ids: Sequence[str], vectors: FloatArray) -> None:
        """Items' CF vectors as CF learned them; they teach the content map, and go to the index."""
        content = self.content
        if content is None:
            self.index.upsert("cf", item_ids, vectors)
            return
        contents = self._content(item_ids)
        taught = []
        for n, (item, vector) in enumerate(zip(item_ids, vectors, strict=True)):
            self._learned[item] = np.asarray(vector, dtype=np.float32)
            if item in contents:
                taught.append(n)
        if taught:
            content.observe_many(
                [item_ids[n] for n in taught],
                np.stack([contents[item_ids[n]] for n in taught]),
                np.asarray(vectors)[taught],
                [self.takes(item_ids[n]) for n in taught],
            )
        self._place(item_ids)

    def relearn(self, with_content: Sequence[str]) -> None:
        """After the content spaces changed wholesale (a new encoder): the map learns again from
        every item CF knows, and every young item's vector is placed anew."""
        content = self.content
        if content is None:
            return
        contents = self._content(list(self._learned))
        for item, cf in self._learned.items():
            if item in contents:
                content.observe(item, contents[item], cf, self.takes(item))
        young = {i for i in with_content if self.takes(i) < content.full_takes}
        moved = sorted(self._young | young)
        self._young = young
        self._place(moved)
        self.moved.update(moved)

    def content_changed(self, item_id: str) -> None:
        """An item's text (or other content) changed: its generated vector follows."""
        if self.content is not None and self.takes(item_id) < self.content.full_takes:
            self._young.add(item_id)
            self._place([item_id])

    def took(self, item_id: str) -> None:
        """An item was taken once more (after `takes` counted it): grown up, it stands on what CF
        learned."""
        content = self.content
        if content is not None and item_id in self._young and self.takes(item_id) >= content.full_takes:
            self._young.discard(item_id)
            self._place([item_id])

    def _content(self, item_ids: Sequence[str]) -> dict[str, FloatArray]:
        """What the content map reads of each item: its text vector, then its vector of each other
        modality (zeros where it has none); items with none of them are left out."""
        parts = [self.index.stack(name, item_ids) for name in ("text", *self.modalities)]
        if len(parts) == 1:
            return self.index.get("text", item_ids)
        matrix = np.concatenate([vectors for vectors, _ in parts], axis=1)
        has = np.logical_or.reduce([present for _, present in parts])
        return {item: matrix[j] for j, item in enumerate(item_ids) if has[j]}

    def _place(self, item_ids: Sequence[str]) -> None:
        """Put items' CF vectors in the index: the learned one, blended with the one the item's
        content predicts while the item is young (or that one alone, before CF learned anything of it)."""
        content = self.content
        assert content is not None
        learned, index = self._learned, self.index
        young = [i for i in item_ids if i in self._young]
        contents = self._content(young) if young else {}
        # Items with nothing left to read (a picture taken back, no text) stand on what CF learned.
        grown = [i for i in item_ids if (i not in self._young or i not in contents) and i in learned]
        if grown:
            index.upsert("cf", grown, np.stack([learned[i] for i in grown]))
        # ... and those CF has learned nothing of either lose the vector their content predicted.
        index.drop("cf", [i for i in young if i not in contents and i not in learned])
        young = [i for i in young if i in contents]
        if young:
            generated = content.generate(np.stack([contents[i] for i in young]))
            if generated is None:  # the map has learned nothing yet
                young = [i for i in young if i in learned]
                if young:
                    index.upsert("cf", young, np.stack([learned[i] for i in young]))
            else:
                missing = np.full(self.cf_dim, np.nan, dtype=np.float32)
                known = np.stack([learned.get(i, missing) for i in young])
                takes = [self.takes(i) for i in young]
                index.upsert("cf", young, content.blend(known, generated, takes))
        if content.fits != self._fits:
            # The map was refit: every young item's generated vector moves with it.
            self._fits = content.fits
            others = sorted(self._young.difference(item_ids))
            if others:
                self._place(others)
                self.moved.update(others)
