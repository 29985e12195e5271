"""``sasrec``: a self-attentive sequential recommender (Kang and McAuley, 2018) as a batch peer.

Under the prequential protocol it is trained on every user's sequence so far and retrained every
`retrain_every` events (the first retrains after 100, 200, 400, ... events), each retrain going on
from the weights before it for `epochs` passes; between retrains it scores each request from the
user's latest `max_len` items with the weights it has. Items first seen after the last retrain
score lowest; a user with no history gets the items' popularity at the last retrain.

Sizes are small so that a run on ML-100K stays within minutes on two CPU cores: 64 dimensions,
two blocks of one-head attention, sequences of 50, binary cross-entropy against one sampled
negative per position (the paper's loss).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from streamrec.eval.base import StreamRecommender
from streamrec.eval.interactions import Interaction
from streamrec.model.base import DoubleArray, FloatArray

__all__ = ["SASRec"]


class SASRec(StreamRecommender):
    """Self-attention over the user's item sequence, trained periodically on all sequences so far.

    Parameters
    ----------
    dim, blocks, heads, max_len, dropout
        The model's sizes.
    epochs
        Passes over the sequences at each retrain (going on from the previous weights).
    lr, batch_size
        Adam's step size, and sequences per step.
    retrain_every
        Events between retrains.
    seed
        Seeds the weights, the negatives and the batch order.
    """

    name = "sasrec"

    def __init__(
        self,
        dim: int = 64,
        blocks: int = 2,
        heads: int = 1,
        max_len: int = 50,
        dropout: float = 0.2,
        epochs: int = 50,
        lr: float = 1e-3,
        batch_size: int = 128,
        retrain_every: int = 5000,
        seed: int = 42,
        device: str = "auto",
    ) -> None:
        super().__init__()
        self.dim, self.blocks, self.heads, self.max_len, self.dropout = dim, blocks, heads, max_len, dropout
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.retrain_every = retrain_every
        self.seed = seed
        #: Where it trains and scores: CUDA when there is one (`auto`), else the CPU.
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.description = (
            f"SASRec (self-attentive sequential, {blocks} blocks, {dim} dims, sequences of {max_len}), "
            f"batch: retrained every {retrain_every} events on every sequence so far, {epochs} epochs each"
        )
        self._sequences: dict[str, list[int]] = {}
        self._n_events = 0
        self._next_train = min(100, retrain_every)
        self._net: Any = None
        self._optimizer: Any = None
        self._trained_items = 0
        self._item_table: FloatArray | None = None
        self._popularity = np.zeros(0)
        self._rng = np.random.default_rng(seed)
        self.n_trains = 0

    def learn(self, event: Interaction, vector: FloatArray | None) -> None:
        pos = self._state().add_item(event.item)
        self._sequences.setdefault(event.user, []).append(pos)
        self._n_events += 1
        if self._n_events >= self._next_train:
            self._train()
            step = self.retrain_every if self._n_events >= self.retrain_every else self._n_events
            self._next_train = self._n_events + step

    def finish(self) -> None:
        if self._n_events:
            self._train()

    def _build(self, n_items: int) -> None:
        torch.manual_seed(self.seed)
        self._net = _Net(n_items + 1, self.dim, self.blocks, self.heads, self.max_len, self.dropout).to(
            self.device
        )
        self._optimizer = torch.optim.Adam(self._net.parameters(), lr=self.lr, betas=(0.9, 0.98))

    def _train(self) -> None:
        n_items = self._state().n_items
        if self._net is None:
            self._build(n_items)
        else:
            self._net.grow(n_items + 1)
            self._net.to(self.device)
            self._optimizer = torch.optim.Adam(self._net.parameters(), lr=self.lr, betas=(0.9, 0.98))
        rows = [seq[-(self.max_len + 1) :] for seq in self._sequences.values() if len(seq) >= 2]
        if not rows:
            return
        inputs = np.zeros((len(rows), self.max_len), dtype=np.int64)
        targets = np.zeros_like(inputs)
        for r, seq in enumerate(rows):
            ids = np.array(seq, dtype=np.int64) + 1  # 0 pads
            inputs[r, -(len(ids) - 1) :] = ids[:-1]
            targets[r, -(len(ids) - 1) :] = ids[1:]
        net = self._net
        net.train()
        torch.manual_seed(self.seed + self.n_trains)
        for _ in range(self.epochs):
            order = self._rng.permutation(len(rows))
            for lo in range(0, len(order), self.batch_size):
                batch = order[lo : lo + self.batch_size]
                x = torch.from_numpy(inputs[batch]).to(self.device)
                y = torch.from_numpy(targets[batch]).to(self.device)
                drawn = self._rng.integers(1, n_items + 1, size=tuple(y.shape))
                negatives = torch.from_numpy(drawn).to(self.device)
                hidden = net(x)
                pos_logit = (hidden * net.items(y)).sum(-1)
                neg_logit = (hidden * net.items(negatives)).sum(-1)
                mask = (y > 0).float()
                loss = (
                    torch.nn.functional.softplus(-pos_logit) * mask
                    + torch.nn.functional.softplus(neg_logit) * mask
                ).sum() / mask.sum().clamp(min=1.0)
                self._optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                self._optimizer.step()
        net.eval()
        with torch.no_grad():
            self._item_table = net.items.weight[1 : n_items + 1].cpu().numpy().copy()
        self._trained_items = n_items
        counts = np.zeros(n_items)
        for seq in self._sequences.values():
            np.add.at(counts, seq, 1.0)
        self._popularity = counts
        self.n_trains += 1

    def scores(self, user: str) -> DoubleArray:
        n = self._state().n_items
        out = np.full(n, -math.inf)
        table = self._item_table
        if table is None:
            return out
        trained = self._trained_items
        seq = [p for p in self._sequences.get(user, []) if p < trained][-self.max_len :]
        if not seq:
            out[:trained] = self._popularity[:trained]
            return out
        x = np.zeros((1, self.max_len), dtype=np.int64)
        x[0, -len(seq) :] = np.array(seq) + 1
        with torch.no_grad():
            hidden = self._net(torch.from_numpy(x).to(self.device))[0, -1].cpu().numpy()
        out[:trained] = table @ hidden
        return out

    def params(self) -> dict[str, Any]:
        return {
            "dim": self.dim, "blocks": self.blocks, "heads": self.heads, "max_len": self.max_len,
            "dropout": self.dropout, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
            "retrain_every": self.retrain_every, "n_trains": self.n_trains, "device": self.device,
        }  # fmt: skip


class _Net(nn.Module):
    """Item and position embeddings, causal self-attention blocks, a final norm."""

    def __init__(self, n_items: int, dim: int, blocks: int, heads: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.items = nn.Embedding(n_items, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        # Small starting vectors: unit-variance ones, scaled by sqrt(dim), saturate every logit.
        for table in (self.items, self.positions):
            nn.init.normal_(table.weight, std=dim**-0.5)
        with torch.no_grad():
            self.items.weight[0] = 0.0
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("causal", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1))

    def grow(self, size: int) -> None:
        """Room for items first seen since the last training (their rows start at random)."""
        old = self.items.weight.data
        if size <= old.shape[0]:
            return
        fresh = nn.Embedding(size, old.shape[1], padding_idx=0)
        nn.init.normal_(fresh.weight, std=old.shape[1] ** -0.5)
        with torch.no_grad():
            fresh.weight[: old.shape[0]] = old
        self.items = fresh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        h = self.items(x) * math.sqrt(self.dim) + self.positions(torch.arange(length, device=x.device))
        h = self.drop(h) * (x > 0).unsqueeze(-1)
        causal: torch.Tensor = self.causal  # type: ignore[assignment]
        h = self.encoder(h, mask=causal[:length, :length])
        out: torch.Tensor = self.norm(h)
        return out
