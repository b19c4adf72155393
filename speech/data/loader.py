"""Length-bucketed DataLoaders: every model that batches variable-length items (ASR
features, TTS mels) gets them the same way, with its own collate function."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from speech.data.sampler import BucketBatchSampler


def batch_loader(dataset: torch.utils.data.Dataset, lengths: Sequence[int], collate_fn: Callable,
                 max_frames: int, max_batch: int = 256, shuffle: bool = False, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> torch.utils.data.DataLoader:
    """A DataLoader over batches of ``dataset`` (this rank's share) of at most ``max_frames``
    padded frames and ``max_batch`` items, items bucketed by ``lengths`` (frames of each item,
    known without loading it); ``collate_fn`` pads a list of items into a batch."""
    sampler = BucketBatchSampler(lengths, max_frames, max_batch, shuffle=shuffle, seed=seed,
                                 rank=rank, world_size=world_size)
    # its own generator: a DataLoader draws a seed from torch's global RNG each time it is
    # iterated, which would make a run resumed mid-epoch diverge from an uninterrupted one
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn,
                                       generator=torch.Generator().manual_seed(seed))
