"""The reference recogniser on a data dir: PocketSphinx 5's US-English model (trained on
real speech, by CMU, nobody here), as the bar this project's recognisers are measured by.

Usage: .venv/bin/python tools/bench/pocketsphinx_wer.py DATA_DIR DECODE_DIR

Each utterance of DATA_DIR (wav.scp, optional segments, text) is decoded whole by
speech.tts.judges.PocketSphinxJudge (its default acoustic model, dictionary and 3-gram LM;
words in the corpus's convention) into DECODE_DIR/text and scored as ``speech score``
does (DECODE_DIR/wer, scoring/). Prints the %WER line and the real-time factor (one
thread); the voices recipe's stage 9 puts the WER in RESULTS.md as its reference row.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from speech.asr.score import score_dir  # noqa: E402
from speech.data.datadir import DataDir, iter_utterance_audio  # noqa: E402
from speech.fileio import write_key_value  # noqa: E402
from speech.tts.judges import PocketSphinxJudge  # noqa: E402


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("decode_dir", type=Path)
    args = p.parse_args(argv)
    judge = PocketSphinxJudge()
    judge.load()
    d = DataDir.read(args.data_dir)
    hyps, seconds, start = {}, 0.0, time.perf_counter()
    for utt, samples in iter_utterance_audio(d, judge.sample_rate):
        hyps[utt] = judge.transcribe(samples)
        seconds += len(samples) / judge.sample_rate
    elapsed = time.perf_counter() - start
    write_key_value(args.decode_dir / "text", hyps)
    stats = score_dir(args.data_dir, args.decode_dir)
    print(f"{judge.source} on {args.data_dir}: {stats.kaldi_line()}; {len(hyps)} utterances, {seconds:.1f} s of "
          f"audio in {elapsed:.1f} s (RTF {elapsed / max(seconds, 1e-9):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
