"""An aspect's polarity read by the encoder fine-tuned on people's labels.

The encoder reads an (aspect, sentence) pair as one input of two segments, the way BERT is
taught aspect-based sentiment as sentence-pair classification (Sun et al., NAACL 2019); its
mean-pooled tokens feed a three-class head (negative, neutral, positive). Encoder and head are
trained together with cross-entropy (AdamW, linear warm-up over the first tenth of the steps,
then linear decay). What a shop with labelled sentences could read, measured by `streamrec
aspects` beside the frozen reader and heads learned on its vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from streamrec.model.text.runtime import resolve_device

__all__ = ["PairClassifier", "PairConfig"]

#: The classes, in the order of the head's outputs.
CLASSES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class PairConfig:
    """How the pair classifier is trained.

    Parameters
    ----------
    epochs
        Passes over the training pairs.
    batch_size
        Pairs per optimizer step.
    learning_rate
        Peak learning rate of the encoder and the head.
    max_seq_length
        Tokens of each (aspect, sentence) pair read; the sentence is cut first.
    device
        ``auto`` (CUDA when there is one, else CPU), ``cpu`` or ``cuda[:N]``; on CUDA the
        forward pass runs in bfloat16 where the GPU has it, else float16.
    seed
        Seeds the head's initial weights, dropout and the batch order.
    """

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    device: str = "auto"
    seed: int = 0


class _Model(torch.nn.Module):
    def __init__(self, model_dir: Path) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(model_dir))
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(CLASSES))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits: torch.Tensor = self.head(pooled)
        return logits


class PairClassifier:
    """A copy of the encoder at `model_dir` taught to read an aspect's polarity in a sentence.

    Taught on labelled pairs (0 negative, 1 neutral, 2 positive), it returns each pair's
    probabilities::

        clf = PairClassifier(model_dir, PairConfig(epochs=3))
        clf.fit(["food", "service"], ["Great pasta, rude waiter.", "Great pasta, rude waiter."], [2, 0])
        clf.predict_proba(["service"], ["The waiter was lovely."])  # [[p_negative, p_neutral, p_positive]]
    """

    def __init__(self, model_dir: str | Path, config: PairConfig | None = None) -> None:
        self.config = config or PairConfig()
        self.device = resolve_device(self.config.device)
        torch.manual_seed(self.config.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = _Model(Path(model_dir)).to(self.device)
        cuda = self.device.startswith("cuda")
        self._dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None

    def _batch(self, aspects: Sequence[str], texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(aspects),
            list(texts),
            padding=True,
            truncation="only_second",
            max_length=self.config.max_seq_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in encoded.items()}

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._dtype is None:
            logits: torch.Tensor = self.model(batch)
            return logits
        with torch.autocast("cuda", dtype=self._dtype):
            logits = self.model(batch)
        return logits.float()

    def fit(
        self,
        aspects: Sequence[str],
        texts: Sequence[str],
        labels: Sequence[int] | np.ndarray,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[float]:
        """Train on (aspect, text) pairs labelled 0 negative, 1 neutral, 2 positive; the mean loss
        of each epoch. `progress(done, total)` is called after each step."""
        y = np.asarray(labels, dtype=np.int64)
        if not (len(aspects) == len(texts) == len(y)) or len(y) == 0:
            raise ValueError(
                "'aspects', 'texts' and 'labels' must be equally long and not empty, got "
                f"{len(aspects)}, {len(texts)} and {len(y)}"
            )
        if y.min() < 0 or y.max() >= len(CLASSES):
            raise ValueError(f"'labels' must be 0, 1 or 2, got values from {y.min()} to {y.max()}")
        cfg = self.config
        per_epoch = -(-len(y) // cfg.batch_size)
        total = cfg.epochs * per_epoch
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
        warmup = max(1, total // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / total)
        )
        rng = np.random.default_rng(cfg.seed)
        losses, step = [], 0
        self.model.train()
        for _ in range(cfg.epochs):
            order, summed = rng.permutation(len(y)), 0.0
            for start in range(0, len(y), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                batch = self._batch([aspects[i] for i in rows], [texts[i] for i in rows])
                target = torch.from_numpy(y[rows]).to(self.device)
                loss = torch.nn.functional.cross_entropy(self._logits(batch), target)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                summed += float(loss.detach()) * len(rows)
                step += 1
                if progress is not None:
                    progress(step, total)
            losses.append(summed / len(y))
        self.model.eval()
        return losses

    def predict_proba(self, aspects: Sequence[str], texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Each pair's probabilities of negative, neutral, positive (rows sum to 1)."""
        out = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self._batch(aspects[start : start + batch_size], texts[start : start + batch_size])
                out.append(torch.softmax(self._logits(batch), dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), dtype=np.float32)
