"""Length-bucketed dynamic batches: utterances of similar length, bounded padded frames.

Sorting by length keeps padding low (the LSTM still runs on packed sequences, so padding
costs memory, not compute); shuffling the order of the batches, with a seed per epoch,
keeps training stochastic and reproducible. Under data-parallel training every rank draws
the same batch list and takes every world_size-th batch, all ranks the same number, so that
their optimizer steps stay in lock step.
"""

from __future__ import annotations

import random
from typing import Iterator, Sequence


class BucketBatchSampler:
    """Yields lists of dataset indices; a batch holds at most ``max_frames`` padded frames.

    lengths: frames per utterance. An utterance longer than ``max_frames`` gets a batch of
    its own rather than being dropped. ``rank``/``world_size``: this process's share of the
    batches (the last few batches of an epoch that do not divide evenly are left out).
    ``set_start(k)`` makes the next iteration begin at this rank's k-th batch: a training run
    resumed mid-epoch skips what it has already seen without loading it.
    """

    def __init__(self, lengths: Sequence[int], max_frames: int, max_batch: int = 256, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if max_frames <= 0:
            raise ValueError("max_frames must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        self.lengths = list(lengths)
        self.max_frames = max_frames
        self.max_batch = max_batch
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        self.start = start

    def batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch."""
        batches = self._all_batches()
        if self.world_size == 1:
            return batches
        per_rank = len(batches) // self.world_size
        return batches[self.rank : per_rank * self.world_size : self.world_size]

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 100003 + self.epoch)
        # random tie-breaking varies which equal-length utterances share a batch per epoch
        noise = [rng.random() for _ in self.lengths] if self.shuffle else [0.0] * len(self.lengths)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], noise[i]))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = self.lengths[i]  # sorted ascending: the newcomer is the longest
            if current and (longest * (len(current) + 1) > self.max_frames or len(current) >= self.max_batch):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start = self.start, 0
        return iter(self.batches()[start:])

    def __len__(self) -> int:
        return len(self.batches())

    def padded_fraction(self) -> float:
        """Share of frames in the padded batches that are padding."""
        real = padded = 0
        for batch in self.batches():
            lens = [self.lengths[i] for i in batch]
            real += sum(lens)
            padded += max(lens) * len(lens)
        return 1.0 - real / padded if padded else 0.0
