"""A tiny regression task for the generic trainer: batches that depend only on (epoch,
position), like the bucketed sampler's, optionally sharded over ranks."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from speech.train import Trainer, TrainerConfig
from speech.train.distributed import DistInfo

NUM_ITEMS, GLOBAL_BATCH = 64, 16


@dataclass
class ToyBatch:
    x: torch.Tensor  # [B, 4]
    y: torch.Tensor  # [B]

    def __len__(self) -> int:
        return len(self.y)


class ShuffledBatches:
    """4 batches of 16 per epoch in an epoch-seeded order; a rank of ``world_size`` gets its
    contiguous slice of every batch, so the ranks' union is the single-process batch."""

    def __init__(self, rank: int = 0, world_size: int = 1):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(NUM_ITEMS, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        self.poison: set[tuple[int, int]] = set()  # (epoch, batch) whose targets become NaN

    def set_epoch(self, epoch):
        self.epoch = epoch

    def set_start(self, start):
        self.start = start

    def __len__(self):
        return NUM_ITEMS // GLOBAL_BATCH

    def __iter__(self):
        order = list(range(NUM_ITEMS))
        random.Random(self.epoch).shuffle(order)
        share = GLOBAL_BATCH // self.world_size
        start, self.start = self.start, 0
        for b in range(start, len(self)):
            idx = order[b * GLOBAL_BATCH + self.rank * share: b * GLOBAL_BATCH + (self.rank + 1) * share]
            y = self.y[idx]
            if (self.epoch, b) in self.poison:
                y = torch.full_like(y, float("nan"))
            yield ToyBatch(self.x[idx], y)


def make_trainer(exp_dir, epochs, saved=None, dropout=0.3, dist=DistInfo(), **cfg_overrides):
    """(Trainer, ShuffledBatches) for a 4-16-1 MLP; ``saved`` collects what on_best gets."""
    torch.manual_seed(0)
    # dropout makes the result depend on the restored RNG state
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(dropout), torch.nn.Linear(16, 1))
    data = ShuffledBatches(dist.rank, dist.world_size)

    def loss_fn(m, batch):
        return ((m(batch.x).squeeze(-1) - batch.y) ** 2).sum(), len(batch)

    def validate(m):
        return {"loss": ((m(data.x).squeeze(-1) - data.y) ** 2).mean().item()}

    def on_best(m):
        if saved is not None:
            saved.append({k: v.clone() for k, v in m.state_dict().items()})

    cfg = TrainerConfig(epochs=epochs, lr=0.01, metric="loss", seed=3, tensorboard=False, **cfg_overrides)
    return Trainer(model, cfg, exp_dir, torch.device("cpu"), loss_fn, validate, on_best, dist=dist), data
