"""Decode a data directory: ``speech decode-asr MODEL_DIR DATA_DIR DECODE_DIR``.

Greedy CTC by default; with ``--lexicon LANG_DIR/lexicon.txt`` a lexicon-constrained beam
search (word loop), with ``--lm ARPA`` (``--lm-weight``, ``--word-score``, or both from
``--lm-params`` as ``speech tune-lm`` chose them on dev) scored by an n-gram LM. Phone
models always search a lexicon (their own by default). Writes DECODE_DIR/text (Kaldi text:
``<utt> words``) and a log; with ``--nbest N`` (lexicon search) also

- DECODE_DIR/nbest: up to N hypotheses (word sequences) an utterance, best first, as
  ``<utt>-<rank> words`` (rank 1 is the line of DECODE_DIR/text);
- DECODE_DIR/nbest_scores: ``<utt>-<rank> score am_score lm_score`` as flashlight ranks
  them: score = am_score + lm_weight * lm_score + word_score * words, am_score the CTC
  log-probability and lm_score the LM's probability of the words, both natural logs (KenLM's
  log10 scores are converted, so that one LM weight means the same in both searches).

Every decode dir also gets DECODE_DIR/decoding.yaml, the search it was made with (lexicon,
LM or graph, beam and weights); ``speech pick-decoding`` copies the one with the best dev
WER into the model dir. Every file is written atomically.

With ``--nj N`` (and ``--cmd``), N jobs decode DATA_DIR/splitN's parts
(:mod:`speech.data.split_stage`) and their outputs are merged: the same text and n-best as
one job.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from speech.asr.dataset import FeatureDataset
from speech.asr.inference import feature_loader, run_model
from speech.asr.lexicon_search import Hypothesis, LexiconBeamSearch
from speech.asr.model_dir import load_model_dir
from speech.asr.search import DECODING, DecodingSetup, load_lm_params
from speech.data import split_stage
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key, write_key_value
from speech.logs import setup_logging

log = logging.getLogger("speech.decode")


def write_nbest(decode_dir: Path, nbest: dict[str, list[Hypothesis]]) -> None:
    """DECODE_DIR/nbest and DECODE_DIR/nbest_scores: utterances in Kaldi order, ranks from 1
    (ranks sort as numbers, which keys sorted as text would not: -10 before -2)."""
    with atomic_write(decode_dir / "nbest") as words, atomic_write(decode_dir / "nbest_scores") as scores:
        for utt in sorted(nbest, key=kaldi_sort_key):
            for rank, h in enumerate(nbest[utt], 1):
                words.write(f"{utt}-{rank} {h.words}\n" if h.words else f"{utt}-{rank}\n")
                scores.write(f"{utt}-{rank} {h.score:.4f} {h.am_score:.4f} {h.lm_score:.4f}\n")


def lm_weights(args: argparse.Namespace) -> tuple[float, float]:
    """(lm_weight, word_score) from --lm-params, or from --lm-weight/--word-score (1 and 0
    when not given)."""
    if args.lm_params is None:
        return (1.0 if args.lm_weight is None else args.lm_weight,
                0.0 if args.word_score is None else args.word_score)
    if args.lm_weight is not None or args.word_score is not None:
        raise SpeechError(f"--lm-params {args.lm_params} sets the LM weight and word score; "
                          "leave out --lm-weight and --word-score")
    if args.lm is None and args.graph is None:
        raise SpeechError(f"--lm-params {args.lm_params} holds weights for an LM; give it with --lm ARPA "
                          "(or the --graph made with it)")
    return load_lm_params(args.lm_params)


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
    p.add_argument("--lm-weight", type=float, help="LM weight (default 1.0)")
    p.add_argument("--word-score", type=float, help="score added per word, in both searches (default 0)")
    p.add_argument("--lm-params", type=Path,
                   help="LM weight and word score from this file (speech tune-lm's OUT_DIR/best.yaml)")
    p.add_argument("--nbest", type=int, help="also write the N best hypotheses (lexicon search only)")
    p.add_argument("--graph", type=Path, help="WFST search through GRAPH/TLG.fst (speech make-graph) instead")
    split_stage.add_options(p)
    args = p.parse_args(argv)

    lm_weight, word_score = lm_weights(args)
    setup = DecodingSetup(args.lexicon, args.lm, args.graph, args.beam_size, lm_weight, word_score)
    if args.nbest is not None and not 1 <= args.nbest <= args.beam_size:
        raise SpeechError(f"--nbest {args.nbest}: give 1 to {args.beam_size} (--beam-size); the search keeps "
                          "no more hypotheses than its beam")
    dirs = split_stage.work_dirs("decode-asr", argv, args, args.data_dir, args.decode_dir, merge, "decode")
    if dirs is None:
        setup.save(args.decode_dir / DECODING)
        return 0
    data_dir, decode_dir = dirs
    setup_logging(decode_dir / "log" / "decode.log")
    device = resolve_device(args.device)
    loaded = load_model_dir(args.model_dir, device)
    dataset = FeatureDataset(data_dir, loaded.frontend)
    search = setup.make(loaded.tokenizer, args.model_dir)
    if args.nbest is not None and not isinstance(search, LexiconBeamSearch):
        raise SpeechError("--nbest needs the lexicon beam search: add --lexicon LANG_DIR/lexicon.txt "
                          "(greedy and --graph decoding give one hypothesis)")
    t0 = time.time()
    hyps: dict[str, str] = {}
    nbest: dict[str, list[Hypothesis]] = {}
    for batch, log_probs, out_lengths in run_model(loaded.model, feature_loader(dataset, args.max_frames), device):
        if args.nbest is None:
            hyps.update(zip(batch.utt_ids, search(log_probs, out_lengths)))
        else:
            lists = search.nbest(log_probs, out_lengths, args.nbest)
            nbest.update(zip(batch.utt_ids, lists))
            hyps.update((utt, hs[0].words if hs else "") for utt, hs in zip(batch.utt_ids, lists))
    if args.nbest is not None:
        write_nbest(decode_dir, nbest)
    write_key_value(decode_dir / "text", hyps)
    setup.save(decode_dir / DECODING)
    audio_seconds = sum(dataset.lengths) * loaded.cfg.features.frame_shift_ms / 1000
    elapsed = time.time() - t0
    log.info("decoded %d utterances (%.1f s of audio) in %.1f s (RTF %.4f) -> %s", len(hyps), audio_seconds,
             elapsed, elapsed / max(audio_seconds, 1e-9), decode_dir / "text")
    return 0


def merge(job_dirs: list[Path], decode_dir: Path) -> None:
    """The jobs' text and n-best lists in one decode dir (n-best keys are ``<utt>-<rank>``)."""
    split_stage.merge_lines(job_dirs, decode_dir, "text")
    for name in ("nbest", "nbest_scores"):
        split_stage.merge_lines(job_dirs, decode_dir, name, key=lambda line: line.split(maxsplit=1)[0].rsplit("-", 1)[0])
