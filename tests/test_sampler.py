"""Length-bucketed batches: frame budget, coverage, per-epoch determinism, rank shards and
starting mid-epoch."""

import random

import pytest

from speech.data.sampler import BucketBatchSampler

LENGTHS = [random.Random(0).randint(50, 900) for _ in range(500)]


def test_batches_respect_the_frame_budget_and_cover_every_utterance_once():
    sampler = BucketBatchSampler(LENGTHS + [5000], max_frames=4000, max_batch=32)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS) + 1))
    for b in batches:
        assert len(b) <= 32
        assert max(LENGTHS[i] if i < len(LENGTHS) else 5000 for i in b) * len(b) <= 4000 or len(b) == 1
    assert [500] in batches  # longer than the budget: a batch of its own
    assert sampler.padded_fraction() < 0.05


def test_order_is_a_function_of_seed_and_epoch():
    a, b = BucketBatchSampler(LENGTHS, 4000, seed=1), BucketBatchSampler(LENGTHS, 4000, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert a.batches() == b.batches()
    b.set_epoch(4)
    assert a.batches() != b.batches()


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_get_disjoint_equal_shares_of_the_same_batches(world_size):
    full = BucketBatchSampler(LENGTHS, 4000, seed=2).batches()
    shards = [BucketBatchSampler(LENGTHS, 4000, seed=2, rank=r, world_size=world_size).batches()
              for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(full) // world_size
    step = [b for s in zip(*shards) for b in s]  # update k uses batch k of every rank
    assert step == full[: len(step)]
    with pytest.raises(ValueError):
        BucketBatchSampler(LENGTHS, 4000, rank=2, world_size=2)


def test_set_start_skips_batches_once():
    sampler = BucketBatchSampler(LENGTHS, 4000, seed=5)
    sampler.set_epoch(2)
    everything = list(sampler)
    sampler.set_start(3)
    assert list(sampler) == everything[3:]
    assert list(sampler) == everything  # the next epoch starts at the beginning again
    assert len(sampler) == len(everything)
