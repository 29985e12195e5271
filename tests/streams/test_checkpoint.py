from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamrec.model.events.dedupe import Deduplicator
from streamrec.streams.errors import StateInUseError
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.settings import Settings


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


def test_a_state_directory_serves_one_running_process(tmp_path: Path) -> None:
    """A second process given the same state directory stops with an error naming the first,
    instead of overwriting its checkpoints; once the first ends, however it ends, it may."""
    pytest.importorskip("fcntl")
    settings = Settings(data_dir=tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateInUseError, match=rf"pid {holder.pid}\).*its own --data-dir"):
            CheckpointStore.claim(settings, "recommender", wait_s=0.5)
        # Another role's directory is another directory.
        CheckpointStore.claim(settings, "cf", wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    store = CheckpointStore.claim(settings, "recommender", wait_s=5.0)
    assert (store.path.parent / "LOCK").read_text() == str(os.getpid())


_HOLD = """
import sys, time
from pathlib import Path
from streamrec.streams.kafka.checkpoint import CheckpointStore
from streamrec.streams.settings import Settings
CheckpointStore.claim(Settings(data_dir=Path(sys.argv[1])), "recommender")
print("held", flush=True)
time.sleep(60)
"""
