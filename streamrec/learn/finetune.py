"""Fine-tuning the encoder on a shop's own interactions, and the manifest that says what was done.

A copy of the encoder is trained contrastively (sentence-transformers' trainer, multiple
negatives ranking loss: each anchor against its positive and every other positive in the
batch) on the pairs of `pairs.build_pairs`. Batches hold no text twice (its no-duplicates
sampler), so a popular item is never an in-batch negative of its own pair. The output is a
sentence-transformers directory, which `TransformerEncoder` (and so the workers and
`streamrec eval`) load as their encoder: ``STREAMREC_ENCODER__MODEL=DIR``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrec.learn.pairs import Pairs
from streamrec.model.text.runtime import resolve_device
from streamrec.model.text.weights import locate_model

__all__ = ["TrainConfig", "Training", "train", "write_manifest"]


@dataclass(frozen=True)
class TrainConfig:
    """How the encoder is trained.

    Parameters
    ----------
    steps
        Optimizer steps; None: one pass over the pairs.
    batch_size
        Pairs per batch: every other positive of the batch is a negative of each anchor.
    learning_rate
        Peak learning rate (linear warm-up over the first tenth of the steps, then linear decay).
    max_seq_length
        Tokens of each text the training reads (the encoder reads whole texts when it serves).
    device
        ``auto`` (CUDA when there is one, else CPU), ``cpu`` or ``cuda[:N]``; on CUDA in bfloat16
        where the GPU has it, else float16.
    seed
        Seeds the batch order and the model's dropout.
    """

    steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    device: str = "auto"
    seed: int = 0


@dataclass
class Training:
    """What a training did: where it came from, how long, and its loss along the way."""

    base: str
    base_path: str
    device: str
    precision: str
    steps: int
    pairs: dict[str, int]
    loss: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0


def train(
    pairs: Pairs,
    out: Path,
    base: str | None = None,
    config: TrainConfig | None = None,
    progress: Callable[[int, int, float | None], None] | None = None,
) -> Training:
    """Train a copy of the encoder `base` (None: the bundled MiniLM) on `pairs`; save it in `out`.

    `progress(step, steps, loss)` is called after every step (loss: the last logged one).
    """
    import torch
    from datasets import Dataset as HFDataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import PrinterCallback, TrainerCallback

    config = config or TrainConfig()
    if len(pairs) < config.batch_size:
        raise ValueError(f"training needs at least one batch of {config.batch_size} pairs, got {len(pairs)}")
    path, label = locate_model(base)
    device = resolve_device(config.device)
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    precision = "bfloat16" if bf16 else "float16" if cuda else "float32"
    model = SentenceTransformer(str(path), device=device)
    model.max_seq_length = config.max_seq_length
    data = HFDataset.from_dict({"anchor": pairs.anchors, "positive": pairs.positives})
    per_epoch = len(pairs) // config.batch_size
    steps = config.steps or per_epoch
    log_every = max(1, min(25, steps // 20))
    record = Training(
        base=label, base_path=str(path), device=device, precision=precision, steps=steps, pairs=pairs.counts()
    )

    class Progress(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any
        ) -> None:
            if logs and "loss" in logs and math.isfinite(logs["loss"]):
                record.loss.append((int(state.global_step), round(float(logs["loss"]), 5)))

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if progress is not None:
                progress(int(state.global_step), steps, record.loss[-1][1] if record.loss else None)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamrec-finetune-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            max_steps=steps,
            num_train_epochs=max(1, math.ceil(steps / max(per_epoch, 1))),
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=max(1, steps // 10),
            lr_scheduler_type="linear",
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            bf16=bf16,
            fp16=cuda and not bf16,
            logging_steps=log_every,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=config.seed,
            dataloader_drop_last=True,
            use_cpu=not cuda,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=data,
            loss=MultipleNegativesRankingLoss(model),
            callbacks=[Progress()],
        )
        trainer.remove_callback(PrinterCallback)  # progress is the caller's to show
        trainer.train()
    record.seconds = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return record


def write_manifest(out: Path, training: Training, data: dict[str, Any], **extra: Any) -> Path:
    """`out/manifest.json`: the base model, the data and pairs, the steps, the loss curve, and `extra`
    (e.g. ``evaluation``: base against fine-tuned)."""
    manifest = {
        "base_model": {"name": training.base, "path": training.base_path},
        "data": data,
        "pairs": training.pairs,
        "steps": training.steps,
        "device": training.device,
        "precision": training.precision,
        "seconds": training.seconds,
        "loss": [{"step": s, "loss": v} for s, v in training.loss],
        **extra,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
