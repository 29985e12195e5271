"""What the encoder role sends of the catalog: items' text and picture vectors, the producer's own
vectors of other modalities, and items leaving or rejoining the catalog, on the `vectors` topic."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from aiokafka import ConsumerRecord

from streamrec.model.errors import InvalidEvent
from streamrec.model.events.schemas import Item
from streamrec.model.text.encoder import TransformerEncoder
from streamrec.model.text.images import ImageEncoder, ImageError, read_image
from streamrec.streams.context import Context
from streamrec.streams.messages import availability_message, vector_key, vector_message

__all__ = ["CatalogOutputs"]


class CatalogOutputs:
    """Sending the catalog's vectors and states (a mixin of `EncoderRole`)."""

    # The role's state these methods use; `EncoderRole.__init__` sets it.
    ctx: Context
    encoder: TransformerEncoder
    images: ImageEncoder | None
    _pool: ThreadPoolExecutor

    def _send_items(self, items: list[tuple[Item, ConsumerRecord]], vectors: Any) -> None:
        ctx, version = self.ctx, self.encoder.version
        for (item, _), vector in zip(items, vectors, strict=True):
            message = vector_message(
                "item", "text", item.item_id, vector, version, item.ts, title=item.title, tags=item.tags
            )
            ctx.output.send(ctx.topics.vectors, message, key=vector_key("item", "text", item.item_id))

    def _pictured(self, item: Item) -> bool:
        """Whether the image model embeds this item's picture (the producer's own vector wins)."""
        return self.images is not None and item.image is not None and "image" not in (item.vectors or {})

    async def _send_pictures(self, pictures: list[tuple[Item, ConsumerRecord]]) -> None:
        """Each picture read and embedded into the modality `image`; an unreadable one dead-lettered."""
        ctx, images = self.ctx, self.images
        assert images is not None

        def embed() -> tuple[list[int], Any, dict[int, ImageError]]:
            read, failed = [], {}
            for n, (item, _) in enumerate(pictures):
                try:
                    read.append((n, read_image(item.image or "")))
                except ImageError as exc:
                    failed[n] = exc
                except Exception as exc:  # noqa: BLE001 - one picture must not stop the role
                    failed[n] = ImageError(f"image could not be read: {type(exc).__name__}: {exc}")
            vectors = images.encode([picture for _, picture in read]) if read else None
            return [n for n, _ in read], vectors, failed

        ok, vectors, failed = await asyncio.get_running_loop().run_in_executor(self._pool, embed)
        for n, exc in failed.items():
            record = pictures[n][1]
            error = InvalidEvent("invalid_image", str(exc))
            ctx.deadletters.send(
                record.topic, record.partition, record.offset, error, record.value, record.key
            )
        for row, n in enumerate(ok):
            item = pictures[n][0]
            message = vector_message("item", "image", item.item_id, vectors[row], images.version, item.ts)
            ctx.output.send(ctx.topics.vectors, message, key=vector_key("item", "image", item.item_id))
        ctx.metrics.encoder_texts.labels("image").inc(len(ok))

    def _send_modalities(self, item: Item, record: ConsumerRecord) -> None:
        """The producer's vectors of other modalities, as given (validated by the parser); a declared
        modality the message leaves out is taken back (a tombstone), so a dropped image goes too."""
        ctx = self.ctx
        given = item.vectors or {}
        for name in ctx.settings.modalities:
            key = vector_key("item", name, item.item_id)
            if name in given:
                vector = np.asarray(given[name], dtype=np.float32)
                message = vector_message("item", name, item.item_id, vector, "producer", item.ts)
                ctx.output.send(ctx.topics.vectors, message, key=key)
            elif not (name == "image" and self._pictured(item)):
                ctx.output.send(ctx.topics.vectors, None, key=key)

    def _send_states(self, states: list[tuple[str, bool, str, ConsumerRecord, list[str]]]) -> None:
        """Items leaving (or rejoining) the catalog, under their text-vector keys, timed as the
        catalog message was, so that the lists they renew are timed from it."""
        ctx = self.ctx
        for item_id, available, reason, record, tags in states:
            ts = record.timestamp / 1000
            ctx.output.send(
                ctx.topics.vectors,
                availability_message(item_id, available, ts, reason, tags=tags),
                key=vector_key("item", "text", item_id),
                timestamp_ms=int(ts * 1000),
            )
