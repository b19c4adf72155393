"""CTC forced alignment: word start/end times and confidences for known transcripts.

``speech align MODEL_DIR DATA_DIR OUT_DIR`` aligns every utterance of DATA_DIR (features
and text) with the model's CTC outputs (``torchaudio.functional.forced_align``, the Viterbi
path through the transcript's tokens) and writes

- OUT_DIR/ctm: Kaldi CTM, ``<utt> 1 <start> <duration> <word> <confidence>``, times in
  seconds from the start of the utterance;
- OUT_DIR/textgrid/<utt>.TextGrid: a Praat TextGrid with one interval tier ``words``.

A word spans its tokens' frames; its confidence is the mean posterior of those tokens on
the path. Utterances that cannot be aligned (a transcript with more tokens than the audio
has output frames) are reported and left out. With ``--nj N`` (and ``--cmd``), N jobs align
DATA_DIR/splitN's parts and their outputs are merged (:mod:`speech.data.split_stage`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import torchaudio.functional as taf

from speech.alignment import TimeSpan, ctm_lines, textgrid
from speech.asr.dataset import FeatureDataset
from speech.asr.inference import feature_loader, run_model
from speech.asr.model_dir import load_model_dir
from speech.data import split_stage
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key, read_key_value
from speech.logs import setup_logging
from speech.text.tokenizer import Tokenizer
from speech.text.tokens import UNK

log = logging.getLogger("speech.align")


EDGE_BLANK_SECONDS = 0.25


def align_words(log_probs: torch.Tensor, tokenizer: Tokenizer, text: str, frame_seconds: float) -> list[TimeSpan]:
    """Word times of ``text`` in ``log_probs`` [T, V] (one utterance's CTC output, T frames
    of ``frame_seconds``). Raises SpeechError when the transcript cannot fit in T frames."""
    spans_of_words = tokenizer.word_spans(text)
    if not spans_of_words:
        return []
    targets = torch.tensor([tokenizer.encode(text)], dtype=torch.int32)
    try:
        path, scores = taf.forced_align(log_probs[None].float().cpu(), targets, blank=0)
    except RuntimeError as e:
        raise SpeechError(f"cannot align {targets.shape[1]} tokens to {log_probs.shape[0]} frames ({e})") from None
    spans = taf.merge_tokens(path[0], scores[0].exp())
    if len(spans) != targets.shape[1]:
        raise SpeechError(f"the alignment has {len(spans)} token spans for {targets.shape[1]} tokens")
    # CTC marks a token by a spike of one or two frames, not by its whole sound: a word's
    # first spike comes after the word has begun and its last spike before it has ended
    # (measured on the digits dev set: up to ~0.25 s at either end). A word therefore takes the blank
    # frames on either side of its spikes, up to the neighbouring tokens' spikes and at most
    # EDGE_BLANK_SECONDS.
    extra = round(EDGE_BLANK_SECONDS / frame_seconds)
    num_frames = log_probs.shape[0]
    words = []
    for word, first, last in spans_of_words:
        mine = spans[first: last + 1]
        preceding = spans[first - 1].end if first > 0 else 0
        following = spans[last + 1].start if last + 1 < len(spans) else num_frames
        start = max(preceding, spans[first].start - extra)
        end = min(following, spans[last].end + extra)
        words.append(TimeSpan(word, start * frame_seconds, end * frame_seconds,
                              sum(s.score for s in mine) / len(mine)))
    return words


def unknown_words(tokenizer: Tokenizer, text: dict[str, str]) -> dict[str, list[str]]:
    """utt -> its words that the tokenizer spells with <unk> (symbols the model lacks)."""
    unk = tokenizer.table.symbols.index(UNK)
    out = {}
    for utt, words in text.items():
        bad = [w for w in words.split() if unk in tokenizer.encode(w)]
        if bad:
            out[utt] = bad
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech align", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="trained model directory (speech train-asr)")
    p.add_argument("data_dir", type=Path, help="data directory with feats.scp and text")
    p.add_argument("out_dir", type=Path, help="output directory (ctm, textgrid/)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--max-frames", type=int, default=40000, help="padded frames per batch")
    split_stage.add_options(p)
    args = p.parse_args(argv)

    if not (args.data_dir / "text").is_file():
        raise SpeechError(f"{args.data_dir}/text: missing; alignment needs the transcripts")
    dirs = split_stage.work_dirs("align", argv, args, args.data_dir, args.out_dir, merge, "align")
    if dirs is None:
        return report(args.data_dir, args.out_dir)
    data_dir, out_dir = dirs
    setup_logging(out_dir / "log" / "align.log")
    device = resolve_device(args.device)
    loaded = load_model_dir(args.model_dir, device)
    text = read_key_value(data_dir / "text", allow_empty_value=True)
    dataset = FeatureDataset(data_dir, loaded.frontend)
    frame_seconds = loaded.cfg.features.frame_shift_ms / 1000 * loaded.cfg.model.subsample
    unknown = unknown_words(loaded.tokenizer, text)
    if unknown:
        # such words are aligned as <unk> tokens the model was never trained to emit: their
        # times are guesses
        examples = ", ".join(f"{utt}: {' '.join(words[:3])}" for utt, words in list(unknown.items())[:3])
        log.warning("%d utterances have words spelled with symbols not in %s (aligned as <unk>; their times "
                    "are unreliable), e.g. %s", len(unknown), args.model_dir / "tokens.txt", examples)
    ctm: dict[str, list[str]] = {}
    grids: dict[str, str] = {}
    for batch, log_probs, out_lengths in run_model(loaded.model, feature_loader(dataset, args.max_frames), device):
        for i, utt in enumerate(batch.utt_ids):
            try:
                words = align_words(log_probs[i, : out_lengths[i]], loaded.tokenizer, text.get(utt, ""),
                                    frame_seconds)
            except SpeechError as e:
                log.warning("%s: not aligned: %s", utt, e)
                continue
            ctm[utt] = ctm_lines(utt, words)
            seconds = float(batch.feat_lengths[i]) * loaded.cfg.features.frame_shift_ms / 1000
            grids[utt] = textgrid({"words": words}, seconds)
    # a job's part may hold no alignable utterance; the whole set is judged after the merge
    if not ctm and args.job is None:
        raise SpeechError(f"{data_dir}: no utterance could be aligned (see {out_dir}/log/align.log)")
    for utt, grid in grids.items():
        with atomic_write(out_dir / "textgrid" / f"{utt}.TextGrid") as f:
            f.write(grid)
    with atomic_write(out_dir / "ctm") as f:
        for utt in sorted(ctm, key=kaldi_sort_key):
            f.writelines(line + "\n" for line in ctm[utt])
    return 0 if args.job is not None else report(data_dir, out_dir)


def merge(job_dirs: list[Path], out_dir: Path) -> None:
    split_stage.merge_lines(job_dirs, out_dir, "ctm")
    split_stage.merge_files(job_dirs, out_dir, "textgrid")


def report(data_dir: Path, out_dir: Path) -> int:
    """Print how many utterances of DATA_DIR OUT_DIR/ctm aligned (one with an empty transcript
    has no line and counts as aligned); SpeechError when none."""
    text = read_key_value(data_dir / "text", allow_empty_value=True)
    in_ctm = {line.split(maxsplit=1)[0] for line in (out_dir / "ctm").read_text(encoding="utf-8").splitlines()}
    failed = sum(1 for utt, words in text.items() if words and utt not in in_ctm)
    if failed == len(text):
        raise SpeechError(f"{data_dir}: no utterance could be aligned (see {out_dir}/log/align*.log)")
    print(f"speech align: {len(text) - failed} utterances -> {out_dir}/ctm and {out_dir}/textgrid/"
          + (f"; {failed} could not be aligned (see {out_dir}/log/align*.log)" if failed else ""))
    return 0
