from __future__ import annotations

import pickle
import time
from pathlib import Path

from streamrec.model.events.dedupe import Deduplicator
from streamrec.streams.kafka.checkpoint import CheckpointStore


def test_a_checkpoint_written_before_the_model_was_divided_into_rooms_still_loads(tmp_path: Path) -> None:
    seen = Deduplicator(capacity=8)
    seen.check(b"click-1")
    data = {"format": 1, "model": seen, "offsets": {"clicks:0": 5}, "saved_at": time.time()}
    # Protocol 0 names each class's module as text: write it as the module used to be named.
    blob = pickle.dumps(data, protocol=0).replace(b"streamrec.model.events.dedupe", b"streamrec.model.dedupe")
    assert b"streamrec.model.dedupe\n" in blob
    store = CheckpointStore(tmp_path / "checkpoint.pkl")
    store.path.write_bytes(blob)

    loaded = store.load()

    assert loaded is not None and loaded.offsets == {"clicks:0": 5}
    assert isinstance(loaded.model, Deduplicator) and b"click-1" in loaded.model
