"""Benchmark BLSTM-CTC training throughput: length-bucketed batches vs naive padded batches.

Usage: .venv/bin/python tools/bench/training.py [--config conf/asr/blstm_ctc_small.yaml]
           [--device cpu|cuda] [--utts 600] [--batches 30] [--threads 2]

Both batchings get the same budget of padded frames per batch (``max_frames`` of the
config) over the same utterances, and run the same training steps (forward, CTC loss,
backward, Adam) of the config's model:

- bucketed: :class:`speech.data.sampler.BucketBatchSampler` (similar lengths together);
- naive: utterances in random order, a batch closed when its padded size would pass the
  budget (what a plain DataLoader with a frame budget does).

Utterances are random 80-dim features (content does not change the cost) with lengths
drawn like read sentences: log-normal around 4 s, 1-15 s. Throughput is seconds of audio
(10 ms frames) trained per wall-clock second over ``--batches`` batches after two warm-up
batches; the ratio is bucketed over naive. On CUDA the peak memory of each is printed too.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from speech.asr.dataset import collate  # noqa: E402
from speech.asr.model import BlstmCtc  # noqa: E402
from speech.asr.model_dir import AsrConfig  # noqa: E402
from speech.asr.train import summed_ctc_loss  # noqa: E402
from speech.config import load_config  # noqa: E402
from speech.data.sampler import BucketBatchSampler  # noqa: E402

FRAME_SECONDS = 0.01
DIM, VOCAB = 80, 30


def utterance_lengths(n: int, seed: int = 0) -> list[int]:
    """Frames per utterance: log-normal around 4 s, clipped to 1-15 s."""
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(4.0), 0.5, size=n), 1.0, 15.0)
    return [int(s / FRAME_SECONDS) for s in seconds]


def naive_batches(lengths: list[int], max_frames: int, max_batch: int, seed: int = 0) -> list[list[int]]:
    """Random order; a batch ends when one more utterance would pass the padded-frame budget."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches, current, longest = [], [], 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and (new_longest * (len(current) + 1) > max_frames or len(current) >= max_batch):
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def padded_share(batches: list[list[int]], lengths: list[int]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - real / padded


def run(name: str, batches: list[list[int]], lengths: list[int], cfg: AsrConfig, device: torch.device,
        num_batches: int) -> float:
    """Train on ``num_batches`` of ``batches`` (after 2 warm-up ones); print and return the
    audio seconds per second."""
    torch.manual_seed(0)
    model = BlstmCtc(cfg.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = np.random.default_rng(1)

    def item(i: int):
        targets = gen.integers(1, VOCAB, size=max(1, lengths[i] // 12)).tolist()
        return f"u{i}", gen.standard_normal((lengths[i], DIM), dtype=np.float32), targets

    prepared = [collate([item(i) for i in b]) for b in batches[: num_batches + 2]]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    audio, elapsed = 0.0, 0.0
    for k, batch in enumerate(prepared):
        batch = batch.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
        loss = summed_ctc_loss(log_probs, out_lengths, batch) / len(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if k >= 2:  # the first batches pay for allocator and kernel warm-up
            elapsed += time.perf_counter() - t0
            audio += float(batch.feat_lengths.sum()) * FRAME_SECONDS
    speed = audio / elapsed
    memory = f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
    print(f"{name:9s} {len(batches):4d} batches/epoch, {100 * padded_share(batches, lengths):5.1f}% padded frames, "
          f"{speed:8.1f} s of audio per second{memory}")
    return speed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[2] / "conf/asr/blstm_ctc_small.yaml"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--utts", type=int, default=600, help="utterances in the pool (default 600, ~45 min)")
    p.add_argument("--batches", type=int, default=30, help="timed batches per batching (default 30)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    cfg = load_config(AsrConfig, args.config)
    cfg.model.input_dim, cfg.model.vocab_size = DIM, VOCAB
    device = torch.device(args.device)
    lengths = utterance_lengths(args.utts)
    bucketed = BucketBatchSampler(lengths, cfg.max_frames, cfg.max_batch, shuffle=True, seed=0).batches()
    naive = naive_batches(lengths, cfg.max_frames, cfg.max_batch)
    num_batches = min(args.batches, len(bucketed) - 2, len(naive) - 2)
    print(f"{args.config}: {cfg.model.num_layers} x {cfg.model.hidden_size} BLSTM, max_frames {cfg.max_frames}, "
          f"{args.utts} utterances ({sum(lengths) * FRAME_SECONDS / 3600:.2f} h), {num_batches} timed batches "
          f"each, {device}" + (f" ({args.threads} threads)" if device.type == "cpu" else ""))
    fast = run("bucketed", bucketed, lengths, cfg, device, num_batches)
    slow = run("naive", naive, lengths, cfg, device, num_batches)
    print(f"bucketed / naive throughput: {fast / slow:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
