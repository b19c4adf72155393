"""Estimate a word n-gram LM: ``speech train-lm TEXT OUT.arpa [--order 3] [--prune 0 1]``.

TEXT is a Kaldi text file (``<utt> words...``; ``--no-ids`` for plain one-sentence-per-line
text). The model is interpolated Kneser-Ney, written in ARPA format (see
:mod:`speech.lm.ngram`), atomically. ``--dev-text`` prints the perplexity of held-out text.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from speech.errors import SpeechError
from speech.lm.ngram import ArpaModel, estimate, write_arpa


def read_sentences(path: Path, with_ids: bool) -> list[list[str]]:
    if not path.is_file():
        raise SpeechError(f"{path}: no such text file")
    sentences = []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            for line in f:
                words = line.split()
                sentences.append(words[1:] if with_ids else words)
        except UnicodeDecodeError:
            raise SpeechError(f"{path}: not UTF-8 text; convert it (e.g. with iconv)") from None
    return [s for s in sentences if s]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech train-lm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", type=Path, help="training text (Kaldi text, or plain with --no-ids)")
    p.add_argument("arpa", type=Path, help="output ARPA file")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", type=int, nargs="*", default=[],
                   help="count thresholds for orders 2, 3, ... (n-grams seen this often or less are dropped)")
    p.add_argument("--no-ids", action="store_true", help="TEXT has no utterance ids")
    p.add_argument("--dev-text", type=Path, help="held-out text (same format) whose perplexity is printed")
    args = p.parse_args(argv)

    t0 = time.time()
    sentences = read_sentences(args.text, not args.no_ids)
    probs, backoffs = estimate(sentences, args.order, args.prune)
    write_arpa(args.arpa, probs, backoffs)
    sizes = ", ".join(f"{len(level)} {n}-grams" for n, level in enumerate(probs, 1))
    print(f"speech train-lm: {len(sentences)} sentences -> {args.arpa} ({sizes}) in {time.time() - t0:.1f} s")
    if args.dev_text:
        model = ArpaModel.load(args.arpa)
        dev = read_sentences(args.dev_text, not args.no_ids)
        print(f"perplexity of {args.dev_text}: {model.perplexity(dev):.2f}")
    return 0
