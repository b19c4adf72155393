"""Decode a data directory: ``speech decode-asr MODEL_DIR DATA_DIR DECODE_DIR``.

Greedy CTC by default; with ``--lexicon LANG_DIR/lexicon.txt`` a lexicon-constrained beam
search (word loop), with ``--lm ARPA`` (``--lm-weight``, ``--word-score``) scored by an
n-gram LM. Phone models always search a lexicon (their own by default). Writes DECODE_DIR/text (Kaldi text: ``<utt> words``), atomically, and
a log.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Iterator

import torch

from speech.asr.dataset import Batch, FeatureDataset, collate
from speech.asr.lexicon_search import make_search
from speech.asr.model_dir import load_model_dir
from speech.data.sampler import BucketBatchSampler
from speech.fileio import write_key_value
from speech.logs import setup_logging
from speech.train.device import resolve_device

log = logging.getLogger("speech.decode")


def batch_loader(dataset: FeatureDataset, max_frames: int, max_batch: int = 256, shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """A DataLoader over length-bucketed batches of ``dataset`` (this rank's share)."""
    sampler = BucketBatchSampler(dataset.lengths, max_frames, max_batch, shuffle=shuffle, seed=seed,
                                 rank=rank, world_size=world_size)
    # its own generator: a DataLoader draws a seed from torch's global RNG each time it is
    # iterated, which would make a run resumed mid-epoch diverge from an uninterrupted one
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                       generator=torch.Generator().manual_seed(seed))


def run_model(model: torch.nn.Module, loader, device: torch.device) -> Iterator[tuple[Batch, torch.Tensor, torch.Tensor]]:
    """Yield (batch on device, log_probs [B, T', V], out_lengths [B]) without gradients."""
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(device)
            log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
            yield batch, log_probs, out_lengths


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech decode-asr", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="trained model directory (speech train-asr)")
    p.add_argument("data_dir", type=Path, help="data directory with feats.scp")
    p.add_argument("decode_dir", type=Path, help="output directory")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--max-frames", type=int, default=40000, help="padded frames per batch")
    p.add_argument("--lexicon", type=Path, help="Kaldi lexicon (word + its tokens): beam search over its words")
    p.add_argument("--beam-size", type=int, default=20, help="beam of the lexicon search (default 20)")
    p.add_argument("--lm", type=Path, help="ARPA word LM for the lexicon search (speech train-lm)")
    p.add_argument("--lm-weight", type=float, default=1.0, help="LM weight (default 1.0)")
    p.add_argument("--word-score", type=float, default=0.0, help="score added per word (default 0)")
    p.add_argument("--graph", type=Path, help="WFST search through GRAPH/TLG.fst (speech make-graph) instead")
    args = p.parse_args(argv)

    setup_logging(args.decode_dir / "log" / "decode.log")
    device = resolve_device(args.device)
    loaded = load_model_dir(args.model_dir, device)
    dataset = FeatureDataset(args.data_dir, loaded.frontend)
    search = make_search(loaded.tokenizer, args.model_dir, args.lexicon, args.beam_size, args.lm, args.lm_weight,
                         args.word_score, args.graph)
    t0 = time.time()
    hyps: dict[str, str] = {}
    for batch, log_probs, out_lengths in run_model(loaded.model, batch_loader(dataset, args.max_frames), device):
        hyps.update(zip(batch.utt_ids, search(log_probs, out_lengths)))
    write_key_value(args.decode_dir / "text", hyps)
    audio_seconds = sum(dataset.lengths) * loaded.cfg.features.frame_shift_ms / 1000
    elapsed = time.time() - t0
    log.info("decoded %d utterances (%.1f s of audio) in %.1f s (RTF %.3f) -> %s", len(hyps), audio_seconds,
             elapsed, elapsed / max(audio_seconds, 1e-9), args.decode_dir / "text")
    return 0
