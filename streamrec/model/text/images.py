"""Pictures read by an image-text model of the CLIP family: an item's `image` becomes its image vector."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.model.base import FloatArray
from streamrec.model.errors import StreamrecError

__all__ = ["ImageEncoder", "ImageError", "read_image"]

#: Largest picture accepted, in bytes (decoded), and in pixels.
MAX_IMAGE_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000


class ImageError(StreamrecError):
    """A picture that cannot be read: the message says what was expected."""


def read_image(ref: str) -> Any:
    """A picture (PIL, RGB) from a local file path, a `data:image/...;base64,` URI, or base64 bytes.

    >>> try:
    ...     read_image("no-such-file.png")
    ... except ImageError as exc:
    ...     print(str(exc)[:56])
    image must be a readable file path, a data URI or base64
    """
    from PIL import Image, UnidentifiedImageError

    raw: bytes | None = None
    text = ref.strip()
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    path = Path(ref)
    try:
        is_file = len(ref) < 4096 and not ref.startswith("data:") and path.is_file()
    except (OSError, ValueError):  # a name too long, or holding a NUL: not a path
        is_file = False
    if is_file:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageError(f"image file {ref!r} must be at most {MAX_IMAGE_BYTES} bytes")
        raw = path.read_bytes()
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if not raw:
        raise ImageError(
            f"image must be a readable file path, a data URI or base64 image bytes; got {ref[:60]!r}"
        )
    if len(raw) > MAX_IMAGE_BYTES:
        raise ImageError(f"image must be at most {MAX_IMAGE_BYTES} bytes, got {len(raw)}")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(
                    f"image must have at most {MAX_PIXELS} pixels, got {image.width}x{image.height}"
                )
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ImageError(f"image bytes are not a picture PIL can read ({exc})") from None


class ImageEncoder:
    """Unit image vectors from a CLIP-family model in a local directory (weights and image processor).

    Parameters
    ----------
    model
        A directory `transformers` loads a CLIP-family model and its image processor from.
    device
        `cpu`, `cuda` or `auto` (CUDA when there is one).
    batch_size
        Pictures per forward pass.
    """

    def __init__(self, model: Path | str, device: str = "auto", batch_size: int = 32) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel

        path = Path(model)
        if not (path / "config.json").is_file():
            raise StreamrecError(f"image model {str(path)!r} must be a local directory holding config.json")
        self.device = (
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        if not hasattr(self.model, "get_image_features"):
            raise StreamrecError(f"image model {str(path)!r} is not an image-text model of the CLIP family")
        try:
            self.processor = AutoImageProcessor.from_pretrained(path)  # type: ignore[no-untyped-call]
        except ImportError:
            # Its fast processor needs torchvision; the PIL one does the same work.
            self.processor = _pil_processor(path)
        self.batch_size = batch_size
        self.dim = int(self.model.config.projection_dim)
        digest = hashlib.blake2b((path / "config.json").read_bytes(), digest_size=4).hexdigest()
        #: Names the vectors' space (model and configuration).
        self.version = f"{path.name}:{digest}"

    def encode(self, images: Sequence[Any]) -> FloatArray:
        """Unit vectors of `images` (PIL pictures), one row each."""
        import torch

        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            batch = list(images[start : start + self.batch_size])
            inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                features = self.model.get_image_features(**inputs)
            if not isinstance(features, torch.Tensor):  # a model output, in newer transformers
                features = features.pooler_output
            vectors = torch.nn.functional.normalize(features.float(), dim=-1)
            out[start : start + len(batch)] = vectors.cpu().numpy()
        return out


def _pil_processor(path: Path) -> Any:
    import json

    import transformers

    config = path / "preprocessor_config.json"
    name = json.loads(config.read_text()).get("image_processor_type", "") if config.is_file() else ""
    base = name.removesuffix("Fast")
    cls = getattr(transformers, base + "Pil", None) or getattr(transformers, base, None)
    if cls is None:
        raise StreamrecError(
            f"image model {str(path)!r} names no image processor transformers has ({name!r})"
        )
    return cls.from_pretrained(path)
