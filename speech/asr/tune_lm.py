"""Tune the LM weight and word score of the lexicon search on a dev set:
``speech tune-lm MODEL_DIR DEV_DATA_DIR OUT_DIR --lm ARPA [--lexicon L]``.

The acoustic model runs once over DEV_DATA_DIR; its log-probabilities stay in memory (on
the CPU) and the flashlight lexicon + LM search decodes them again for every pair of
``--lm-weights`` x ``--word-scores``, each decode scored against DEV_DATA_DIR/text. Writes

- OUT_DIR/grid: ``lm_weight word_score %WER errors ref_words`` for every pair, best first;
- OUT_DIR/best.yaml: the chosen pair, the lowest WER (ties: the smaller |word_score|, then
  the lm_weight closest to 1, then the smaller values), which
  ``speech decode-asr ... --lm ARPA --lm-params OUT_DIR/best.yaml`` applies to test;
- OUT_DIR/log/tune_lm.log.

With ``--nj N`` (and ``--cmd``), N jobs each search every pair on a part of DEV_DATA_DIR
(:mod:`speech.data.split_stage`) and write their error counts (OUT_DIR/splitN/J/counts); the
counts are summed per pair, so the grid and the choice are those of one job.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

from speech.asr.dataset import FeatureDataset
from speech.asr.inference import feature_loader, run_model
from speech.asr.lexicon_search import LexiconBeamSearch
from speech.asr.model_dir import load_model_dir
from speech.asr.search import make_search, save_lm_params
from speech.asr.score import ErrorStats, compute_error_stats
from speech.data import split_stage
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write, read_key_value
from speech.logs import setup_logging

log = logging.getLogger("speech.tune_lm")

GRID, BEST, COUNTS = "grid", "best.yaml", "counts"
GRID_OPTIONS = ("--lm-weights", "--word-scores")

# one batch of acoustic model outputs: (utterance ids [B], log_probs [B, T, V], lengths [B])
Outputs = tuple[list[str], torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class GridPoint:
    lm_weight: float
    word_score: float
    stats: ErrorStats

    def rank_key(self) -> tuple:
        """Lower is better: errors (every pair is scored on the same words), then the
        smaller |word_score|, the lm_weight closest to 1, and the smaller values, so that
        ties are broken the same way on every run."""
        return (self.stats.errors, abs(self.word_score), abs(self.lm_weight - 1.0), self.lm_weight, self.word_score)


def parse_grid(option: str, text: str, minimum: float | None = None) -> list[float]:
    """'0.5,1,1.5' -> [0.5, 1.0, 1.5], duplicates dropped; SpeechError naming ``option``
    for an empty list, a value that is not a finite number, or one below ``minimum``."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SpeechError(f"{option} is empty; give comma-separated numbers, e.g. {option} 0.5,1,1.5")
    values = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SpeechError(f"{option}: '{item}' is not a number; give comma-separated numbers, e.g. {option} 0.5,1,1.5")
        if minimum is not None and value < minimum:
            raise SpeechError(f"{option}: {item} is below {minimum:g}; give values >= {minimum:g}")
        if value not in values:
            values.append(value)
    return values


def tune(search: LexiconBeamSearch, outputs: Sequence[Outputs], refs: Mapping[str, str],
         lm_weights: Iterable[float], word_scores: Iterable[float]) -> list[GridPoint]:
    """Decode ``outputs`` with every (lm_weight, word_score) pair and score each against
    ``refs``; returns the grid sorted best first (:meth:`GridPoint.rank_key`)."""
    word_scores = list(word_scores)
    grid = []
    for lm_weight in lm_weights:
        for word_score in word_scores:
            weighted = search.with_weights(lm_weight, word_score)
            hyps: dict[str, str] = {}
            for utt_ids, log_probs, lengths in outputs:
                hyps.update(zip(utt_ids, weighted(log_probs, lengths)))
            point = GridPoint(lm_weight, word_score, compute_error_stats(refs, hyps))
            log.info("lm_weight %g word_score %g: %s", lm_weight, word_score, point.stats.kaldi_line())
            grid.append(point)
    return sorted(grid, key=GridPoint.rank_key)


def write_grid(path: Path, grid: Sequence[GridPoint]) -> None:
    with atomic_write(path) as f:
        f.write("# lm_weight word_score %WER errors ref_words (best first)\n")
        for p in grid:
            f.write(f"{p.lm_weight:g} {p.word_score:g} {p.stats.error_rate:.2f} {p.stats.errors} {p.stats.ref_words}\n")


def write_counts(path: Path, grid: Sequence[GridPoint]) -> None:
    """A job's error counts per pair: ``lm_weight word_score`` and the ErrorStats fields."""
    with atomic_write(path) as f:
        for p in grid:
            f.write(f"{p.lm_weight!r} {p.word_score!r} {' '.join(str(getattr(p.stats, n)) for n in _COUNT_FIELDS)}\n")


_COUNT_FIELDS = [f.name for f in dataclasses.fields(ErrorStats)]


def merged_grid(job_dirs: list[Path]) -> list[GridPoint]:
    """The grid of the jobs' ``counts`` files summed per pair, best first."""
    totals: dict[tuple[float, float], ErrorStats] = {}
    for job in job_dirs:
        for line in (job / COUNTS).read_text(encoding="ascii").splitlines():
            lm_weight, word_score, *counts = line.split()
            pair = float(lm_weight), float(word_score)
            stats = ErrorStats(**dict(zip(_COUNT_FIELDS, map(int, counts))))
            totals[pair] = totals[pair] + stats if pair in totals else stats
    return sorted((GridPoint(w, s, stats) for (w, s), stats in totals.items()), key=GridPoint.rank_key)


def glue_grid_values(argv: list[str]) -> list[str]:
    """'--word-scores -1,0,1' -> '--word-scores=-1,0,1': argparse takes a value that starts
    with '-' and is not a plain number for an option, and fails."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        out.append(f"{arg}={next(rest, '')}" if arg in GRID_OPTIONS else arg)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech tune-lm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="trained model directory (speech train-asr)")
    p.add_argument("dev_dir", type=Path, help="dev data directory with feats.scp and text")
    p.add_argument("out_dir", type=Path, help="output directory for grid and best.yaml")
    p.add_argument("--lm", type=Path, required=True, help="ARPA word LM (speech train-lm)")
    p.add_argument("--lexicon", type=Path,
                   help="Kaldi lexicon (word + its tokens); phone models default to their own")
    p.add_argument("--lm-weights", default="0.5,1,1.5,2", help="comma-separated LM weights (default 0.5,1,1.5,2)")
    p.add_argument("--word-scores", default="-1,0,1,2", help="comma-separated word scores (default -1,0,1,2)")
    p.add_argument("--beam-size", type=int, default=20, help="beam of the lexicon search (default 20)")
    p.add_argument("--device", default="cpu", help="device of the acoustic model: cpu, cuda, cuda:N or auto")
    p.add_argument("--max-frames", type=int, default=40000, help="padded frames per batch")
    split_stage.add_options(p)
    argv = glue_grid_values(argv)
    args = p.parse_args(argv)

    # options and inputs are checked before the model runs, so a typo fails in a second
    lm_weights = parse_grid("--lm-weights", args.lm_weights, minimum=0.0)
    word_scores = parse_grid("--word-scores", args.word_scores)
    if not (args.dev_dir / "text").is_file():
        raise SpeechError(f"{args.dev_dir}/text: missing; tune-lm scores against the dev set's transcripts, "
                          "give a data directory that has them")
    dirs = split_stage.work_dirs("tune-lm", argv, args, args.dev_dir, args.out_dir,
                                 lambda jobs, out: write_result(args, merged_grid(jobs)), "tune_lm")
    if dirs is None:
        return 0
    dev_dir, out_dir = dirs
    refs = read_key_value(dev_dir / "text", allow_empty_value=True)
    setup_logging(out_dir / "log" / "tune_lm.log")
    device = resolve_device(args.device)
    loaded = load_model_dir(args.model_dir, device)
    # with an LM, make_search gives the lexicon search or asks for --lexicon
    search = make_search(loaded.tokenizer, args.model_dir, args.lexicon, args.beam_size, args.lm)
    assert isinstance(search, LexiconBeamSearch)
    dataset = FeatureDataset(dev_dir, loaded.frontend)

    t0 = time.time()
    outputs = [(batch.utt_ids, log_probs.cpu(), out_lengths.cpu()) for batch, log_probs, out_lengths in
               run_model(loaded.model, feature_loader(dataset, args.max_frames), device)]
    log.info("acoustic model over %d utterances in %.1f s; searching %d x %d weights", len(dataset.utt_ids),
             time.time() - t0, len(lm_weights), len(word_scores))
    t0 = time.time()
    grid = tune(search, outputs, refs, lm_weights, word_scores)
    log.info("%d searches in %.1f s", len(grid), time.time() - t0)
    if args.job is not None:
        write_counts(out_dir / COUNTS, grid)
    else:
        write_result(args, grid)
    return 0


def write_result(args: argparse.Namespace, grid: list[GridPoint]) -> None:
    """OUT_DIR/grid and OUT_DIR/best.yaml from the sorted grid, and the choice on stdout."""
    best = grid[0]
    write_grid(args.out_dir / GRID, grid)
    save_lm_params(args.out_dir / BEST, best.lm_weight, best.word_score, dev_wer=round(best.stats.error_rate, 2),
                   dev_dir=str(args.dev_dir), lm=str(args.lm), beam_size=args.beam_size)
    log.info("best lm_weight %g word_score %g: %s -> %s", best.lm_weight, best.word_score,
             best.stats.kaldi_line(), args.out_dir / BEST)
    print(f"speech tune-lm: lm_weight {best.lm_weight:g} word_score {best.word_score:g} "
          f"{best.stats.kaldi_line()} {args.out_dir / BEST}")
