"""Prequential (test-then-train) evaluation of streaming recommenders on one event stream.

For each interaction in time order, every recommender is first asked for its top K for
that user, excluding what the user already interacted with; the list is scored against
the item the user actually took. Then every recommender learns from the event, with its
review text if any. All recommenders see the same stream and are scored on the same
events, negatives and slices, with the metric accumulators the live workers use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from threadpoolctl import threadpool_limits

from streamrec.eval.arrivals import catalog_arrivals, enter_item
from streamrec.eval.base import StreamRecommender
from streamrec.eval.encodings import Vectors, encode_texts, read_passages
from streamrec.eval.interactions import Dataset
from streamrec.eval.prequential import PrequentialConfig, PrequentialResult
from streamrec.eval.replay import replay_stream
from streamrec.eval.stream import StreamState
from streamrec.eval.vectors import CachedEncoder
from streamrec.model.base import FloatArray, TextEncoder
from streamrec.model.text.opinions import Aspect
from streamrec.model.text.reader import Passage, ReviewReader

__all__ = ["run_prequential"]


def run_prequential(
    dataset: Dataset,
    recommenders: Sequence[StreamRecommender],
    encoder: TextEncoder | CachedEncoder | None,
    config: PrequentialConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    aspects: Sequence[Aspect] | None = None,
    alternates: Mapping[str, TextEncoder | CachedEncoder] | None = None,
) -> PrequentialResult:
    """Run the protocol over `dataset` and return every recommender's metrics.

    `alternates` are other encoders by name: a recommender whose `encoder` names one reads its
    vectors of catalog texts and reviews (how reviews read as opinions is the main encoder's
    reading, so that rows differ in their text vectors alone).

    `progress(phase, done, total)` is called as texts are encoded (phase ``encode``; then
    ``read`` and ``read:apart`` as reviews are read for `aspects`) and as events are processed
    (``stream``). Reviews are read by `ReviewReader`s, one per reading mode the recommenders
    ask for, each reading a review before it learns its rating, as the encoder role does.
    """
    config = config or PrequentialConfig()
    started = time.perf_counter()
    events = dataset.interactions
    encoder_seconds = 0.0
    cached = encoder if isinstance(encoder, CachedEncoder) or encoder is None else CachedEncoder(encoder)
    text_dim = cached.dim if cached is not None else 1
    state = StreamState(text_dim)

    # Texts are encoded up front in batches: the same vectors the encoder worker would
    # produce one message at a time, at a fraction of the cost.
    catalog_ids = list(dict.fromkeys([*dataset.item_texts, *dataset.item_titles, *dataset.item_times]))
    described = [i for i in catalog_ids if i in dataset.item_texts]
    review_rows = [j for j, e in enumerate(events) if e.text]
    catalog_vectors: dict[str, FloatArray] = {}
    review_vectors: dict[int, FloatArray] = {}
    readers: dict[str, tuple[ReviewReader, dict[int, Passage]]] = {}
    if cached is not None:
        t0 = time.perf_counter()
        texts = [dataset.item_texts[i] for i in described]
        catalog_vectors = dict(zip(described, encode_texts(cached, texts, "encode", progress), strict=True))
        said = [events[j].text or "" for j in review_rows]
        if aspects is None or not review_rows:
            review_vectors = dict(
                zip(review_rows, encode_texts(cached, said, "encode", progress), strict=True)
            )
        else:
            asked = {getattr(r, "reading", "pooled") for r in recommenders} - {"pooled"}
            for mode in ["pooled", *sorted(asked)]:
                reader = ReviewReader(cached, aspects, clauses=mode)  # type: ignore[arg-type]
                passages = read_passages(
                    reader, said, "read" if mode == "pooled" else f"read:{mode}", progress
                )
                readers[mode] = (reader, dict(zip(review_rows, passages, strict=True)))
            review_vectors = {j: p.vector for j, p in readers["pooled"][1].items()}
        cached.save()
        encoder_seconds = time.perf_counter() - t0
    others: dict[str, Vectors] = {}
    for name, other in (alternates or {}).items():
        t0 = time.perf_counter()
        alt = other if isinstance(other, CachedEncoder) else CachedEncoder(other)
        texts = [dataset.item_texts[i] for i in described]
        said = [events[j].text or "" for j in review_rows]
        others[name] = (
            dict(zip(described, encode_texts(alt, texts, f"encode:{name}", progress), strict=True)),
            dict(zip(review_rows, encode_texts(alt, said, f"encode:{name}", progress), strict=True)),
        )
        alt.save()
        encoder_seconds += time.perf_counter() - t0

    catalog, arrivals = catalog_arrivals(dataset, catalog_ids, catalog_vectors)
    for item, (_, vector) in catalog.items():
        enter_item(state, item, vector)
    if events:
        state.ts = events[0].ts
    for rec in recommenders:
        if rec.encoder:
            own = others[rec.encoder][0]
            rec.start(state, {item: (title, own.get(item)) for item, (title, _) in catalog.items()})
        else:
            rec.start(state, catalog)

    # Every product in the loop is one vector against a small matrix: BLAS threads only add
    # synchronization, and on a busy machine their spinning costs more than the work.
    with threadpool_limits(1, "blas"):
        return replay_stream(
            dataset,
            recommenders,
            state,
            review_vectors,
            readers,
            config,
            cached,
            started,
            encoder_seconds,
            progress,
            arrivals=arrivals,
            others=others,
        )
