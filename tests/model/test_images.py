"""Pictures read and embedded by a CLIP-family model (a tiny one the tests build: none can be had
offline here)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streamrec.model.errors import StreamrecError
from streamrec.model.text.images import ImageEncoder, ImageError, read_image


def test_pictures_are_read_from_paths_data_uris_and_base64(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    Image.new("RGB", (20, 10), (200, 0, 0)).save(path)
    raw = base64.b64encode(path.read_bytes()).decode()
    for ref in (str(path), raw, f"data:image/png;base64,{raw}"):
        picture = read_image(ref)
        assert picture.size == (20, 10) and picture.mode == "RGB"
    garbage = base64.b64encode(b"not a picture").decode()
    for bad, says in ((str(tmp_path / "missing.png"), "readable file path"), (garbage, "not a picture PIL")):
        with pytest.raises(ImageError, match=says):
            read_image(bad)


def test_an_image_model_gives_unit_vectors_near_for_pictures_alike(tiny_clip: Path) -> None:
    encoder = ImageEncoder(tiny_clip, "cpu", batch_size=2)
    pictures = [Image.new("RGB", (48, 48), c) for c in ((230, 20, 20), (220, 30, 40), (20, 20, 230))]
    vectors = encoder.encode(pictures)
    assert vectors.shape == (3, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.allclose(encoder.encode(pictures[:1]), vectors[:1], atol=1e-5)  # batches do not change a vector
    with pytest.raises(StreamrecError, match="config.json"):
        ImageEncoder(Path(tiny_clip).parent / "nowhere")
