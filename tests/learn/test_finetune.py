"""`streamrec finetune` trains a real copy of the encoder on a shop's export; the workers load it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streamrec.model.text.encoder import TransformerEncoder
from streamrec.streams.commands.finetune import finetune_command
from tests.learn.conftest import COLUMNS

pytestmark = pytest.mark.slow


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("finetune")(finetune_command)

    @app.callback()
    def main() -> None:
        """Keep `finetune` a subcommand."""

    return app


def test_finetune_writes_an_encoder_the_pipeline_loads_and_a_manifest_that_compares_it(
    sample_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the vector cache of the evaluation
    out = tmp_path / "tuned"
    args = ["finetune", "--dataset", str(sample_csv), "--format", "csv", "--columns", COLUMNS,
            "--out", str(out), "--max-pairs", "24", "--batch-size", "8", "--max-seq-length", "24",
            "--max-length", "64", "--learning-rate", "1e-4", "--limit", "300"]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["base_model"]["name"] == "all-MiniLM-L6-v2"
    assert manifest["steps"] == 3 and sum(manifest["pairs"].values()) == 24
    assert manifest["data"]["train_events"] == int(0.8 * manifest["data"]["events"])
    assert [p["step"] for p in manifest["loss"]] and all(p["loss"] > 0 for p in manifest["loss"])
    for label in ("base", "finetuned"):
        figures = manifest["evaluation"][label]
        assert set(figures) == {"text", "hybrid", "hybrid_no_text"}
        for slices in figures.values():
            assert set(slices) == {"all", "cold_items", "cold_users"}
            assert {"hr@10", "ndcg@10", "liked_hr@10", "panned_hit@10"} <= set(slices["all"])
            assert slices["all"]["n"] > 0
    assert set(manifest["text_lift"]) == {"base", "finetuned"}

    # What the workers run with STREAMREC_ENCODER__MODEL=OUT: the trained weights, not the base's.
    base, tuned = TransformerEncoder(max_length=64), TransformerEncoder(str(out), max_length=64)
    assert tuned.version != base.version and tuned.dim == base.dim
    texts = ["Warm tone, the tuners slip.", "A cheap cable that crackles."]
    a, b = base.encode(texts), tuned.encode(texts)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(a, b, atol=1e-4)
    assert (a * b).sum(axis=1).min() > 0.9  # three small steps move the encoder, not away from itself


def test_finetune_says_what_is_wrong_with_too_little_data(sample_csv: Path, tmp_path: Path) -> None:
    args = ["finetune", "--dataset", str(sample_csv), "--format", "csv", "--columns", COLUMNS,
            "--out", str(tmp_path / "x"), "--limit", "3", "--no-evaluate"]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert "fewer than one batch" in result.output
