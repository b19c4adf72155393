"""Running an acoustic model over a data directory's features, as decoding, alignment,
LM tuning, training's dev pass and the benchmarks all do."""

from __future__ import annotations

from typing import Iterator

import torch

from speech.asr.dataset import Batch, FeatureDataset, collate
from speech.data.loader import batch_loader


def feature_loader(dataset: FeatureDataset, max_frames: int, max_batch: int = 256, shuffle: bool = False,
                   seed: int = 0, rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """Length-bucketed :class:`Batch` es of ``dataset`` (this rank's share)."""
    return batch_loader(dataset, dataset.lengths, collate, max_frames, max_batch, shuffle=shuffle, seed=seed,
                        rank=rank, world_size=world_size)


def run_model(model: torch.nn.Module, loader,
              device: torch.device | str) -> Iterator[tuple[Batch, torch.Tensor, torch.Tensor]]:
    """Yield (batch on device, log_probs [B, T', V], out_lengths [B]) without gradients."""
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(device)
            log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
            yield batch, log_probs, out_lengths
