"""Record a model's best search: ``speech pick-decoding MODEL_DIR DEV_DECODE_DIR...``.

Each DEV_DECODE_DIR is a decoding of the dev set by ``speech decode-asr`` (its
decoding.yaml says how) scored by ``speech score`` (its wer). The one with the lowest
dev WER (ties: the first given) is copied to MODEL_DIR/decoding.yaml, its paths made
relative to MODEL_DIR, with its dev WER and where it came from, so that ``speech
transcribe --model MODEL_DIR`` decodes as the recipe's best system does with no more
flags. Only dev decodings should be given: choosing on test would tune on the test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speech.asr.results import read_result
from speech.asr.search import DECODING, DecodingSetup
from speech.errors import SpeechError


def pick_decoding(model_dir: str | Path, decode_dirs: list[str | Path]) -> tuple[Path, float]:
    """Write MODEL_DIR/decoding.yaml from the best of ``decode_dirs``; (that dir, its WER)."""
    model_dir = Path(model_dir)
    if not decode_dirs:
        raise SpeechError("give at least one dev decode dir (speech decode-asr ... DECODE_DIR; speech score)")
    scored = []
    for d in map(Path, decode_dirs):
        if not (d / "wer").is_file():
            raise SpeechError(f"{d}: no wer file; score it first with speech score DATA_DIR {d}")
        setup = DecodingSetup.load(d / DECODING)
        result = read_result(d / "wer")
        scored.append((result.errors / max(result.words, 1), float(result.wer), d, setup))
    _, wer, best, setup = min(scored, key=lambda item: item[0])  # min keeps the first of equals
    setup.save(model_dir / DECODING, dev_wer=wer, chosen_from=str(best))
    return best, wer


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech pick-decoding", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="trained model directory (speech train-asr)")
    p.add_argument("decode_dirs", type=Path, nargs="+", help="scored decode dirs of the dev set")
    args = p.parse_args(argv)
    if not args.model_dir.is_dir():
        raise SpeechError(f"{args.model_dir}: no such model directory")
    best, wer = pick_decoding(args.model_dir, args.decode_dirs)
    print(f"speech pick-decoding: {best} (dev %WER {wer:.2f}) -> {args.model_dir / DECODING}")
    return 0
