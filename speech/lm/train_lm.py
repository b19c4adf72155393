"""Estimate a word n-gram LM: ``speech train-lm TEXT OUT.arpa [--order 3] [--prune 0 1]``.

TEXT is a Kaldi text file (``<utt> words...``; ``--no-ids`` for plain one-sentence-per-line
text). The model is interpolated Kneser-Ney, written in ARPA format, atomically: by KenLM's
``lmplz`` (modified Kneser-Ney) when it is found ($SPEECH_LMPLZ, tools/kenlm/bin/lmplz
from tools/install_kenlm.sh, or lmplz on the PATH), else by the pure-Python estimator of
:mod:`speech.lm.ngram`; ``--backend`` chooses. ``--dev-text`` prints the perplexity of
held-out text.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Iterator

from speech.errors import SpeechError
from speech.lm.lmplz import find_lmplz, run_lmplz
from speech.lm.ngram import ArpaModel, estimate, prune_thresholds, write_arpa
from speech.logs import setup_logging

log = logging.getLogger("speech.train_lm")


def iter_sentences(path: Path, with_ids: bool) -> Iterator[list[str]]:
    """The non-empty word sequences of a text file, read lazily (the file is checked now)."""
    if not path.is_file():
        raise SpeechError(f"{path}: no such text file")

    def lines() -> Iterator[list[str]]:
        with open(path, encoding="utf-8", errors="strict") as f:
            try:
                for line in f:
                    words = line.split()
                    words = words[1:] if with_ids else words
                    if words:
                        yield words
            except UnicodeDecodeError:
                raise SpeechError(f"{path}: not UTF-8 text; convert it (e.g. with iconv)") from None

    return lines()


def read_sentences(path: Path, with_ids: bool) -> list[list[str]]:
    return list(iter_sentences(path, with_ids))


def arpa_sizes(path: Path) -> list[int]:
    """The n-gram counts of an ARPA file's \\data\\ header."""
    sizes = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                sizes.append(int(line.split("=")[1]))
            elif line.startswith("\\") and line.strip().endswith("-grams:"):
                break
    return sizes


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
    p.add_argument("--backend", choices=["auto", "kenlm", "python"], default="auto",
                   help="kenlm: KenLM's lmplz; python: the built-in estimator; auto (default): lmplz when found")
    p.add_argument("--memory", default="1G",
                   help="lmplz's sorting memory (-S), as GNU sort takes sizes: 1G, 20%% (default 1G)")
    args = p.parse_args(argv)
    setup_logging()

    t0 = time.time()
    prune = prune_thresholds(args.order, args.prune)
    lmplz, where = find_lmplz() if args.backend != "python" else (None, "")
    if args.backend == "kenlm" and lmplz is None:
        raise SpeechError(f"--backend kenlm: no lmplz program at {where}; build it with tools/install_kenlm.sh, "
                          f"or use --backend python")
    if lmplz is not None:
        log.info("backend kenlm: %s", lmplz)
        n = run_lmplz(lmplz, iter_sentences(args.text, not args.no_ids), args.arpa, args.order, prune,
                      args.memory, source=str(args.text))
        counts = arpa_sizes(args.arpa)
    else:
        log.info("backend python" + (f": no lmplz at {where}" if args.backend == "auto" else ""))
        sentences = read_sentences(args.text, not args.no_ids)
        probs, backoffs = estimate(sentences, args.order, prune)
        write_arpa(args.arpa, probs, backoffs)
        n, counts = len(sentences), [len(level) for level in probs]
    sizes = ", ".join(f"{c} {k}-grams" for k, c in enumerate(counts, 1))
    print(f"speech train-lm: {n} sentences -> {args.arpa} ({sizes}) in {time.time() - t0:.1f} s")
    if args.dev_text:
        model = ArpaModel.load(args.arpa)
        dev = read_sentences(args.dev_text, not args.no_ids)
        print(f"perplexity of {args.dev_text}: {model.perplexity(dev):.2f}")
    return 0
