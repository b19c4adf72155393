"""The decoding graph of a CTC model: ``speech make-graph LANG_DIR GRAPH_DIR [--lm ARPA]``.

TLG = T o min(det(L o G)) as EESEN builds it (:mod:`speech.graph`): T the CTC topology
over LANG_DIR/tokens.txt, L the lexicon (LANG_DIR/lexicon.txt or ``--lexicon``), G the
ARPA LM or, without one, a loop over the lexicon's words. With characters every spelling
ends with the boundary ``<space>`` and more boundaries may come between words, as in
flashlight's lexicon search (its silence token); the search appends a boundary frame for
the last word, as flashlight's does, so both searches score the same paths.

Writes GRAPH_DIR/TLG.fst and GRAPH_DIR/words.txt (atomically); skipped when both are newer
than the lexicon, tokens and LM (``--force`` rebuilds). ``speech decode-asr --graph
GRAPH_DIR`` decodes with it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from speech.errors import SpeechError
from speech.stage import skip
from speech.text.tokenizer import LEXICON, TOKENS, Tokenizer, load_tokenizer, read_lexicon
from speech.text.tokens import BLANK, SPACE


def ctc_graph(tokenizer: Tokenizer, lexicon: dict[str, list[list[str]]], arpa: Path | None = None):
    """(TLG, id -> word) for a CTC model with ``tokenizer``'s units."""
    from speech.graph.build import build_graph
    from speech.graph.topology import ctc_topology

    symbols = tokenizer.table.symbols
    boundary = tokenizer.word_boundary
    return build_graph(symbols, lexicon, ctc_topology, arpa, word_end=None if boundary == BLANK else boundary,
                       optional=[SPACE] if SPACE in symbols else [])


def make_graph(lang_dir: str | Path, graph_dir: str | Path, lm: str | Path | None = None,
               lexicon: str | Path | None = None, force: bool = False) -> bool:
    """Build and write GRAPH_DIR (see the module docstring); False when skipped."""
    from speech.graph.build import GRAPH, WORDS, write_graph

    lang_dir, graph_dir = Path(lang_dir), Path(graph_dir)
    lexicon_path = Path(lexicon) if lexicon is not None else lang_dir / LEXICON
    lm = Path(lm) if lm is not None else None
    if lm is not None and not lm.is_file():
        raise SpeechError(f"{lm}: no such language model; make one with speech train-lm")
    inputs = [lexicon_path, lang_dir / TOKENS] + ([lm] if lm else [])
    if skip("speech make-graph", f"{graph_dir / GRAPH} is newer than its inputs", [graph_dir / GRAPH, graph_dir / WORDS],
            inputs, force=force):
        return False
    t0 = time.time()
    tokenizer = load_tokenizer(lang_dir)
    graph, words = ctc_graph(tokenizer, read_lexicon(lexicon_path, tokenizer.table.symbols), lm)
    write_graph(graph_dir, graph, words)
    print(f"speech make-graph: {graph_dir / GRAPH} ({graph.num_states} states) in {time.time() - t0:.1f} s")
    return True


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech make-graph", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lang_dir", type=Path, help="language dir (tokens.txt, tokenizer.yaml, lexicon.txt)")
    p.add_argument("graph_dir", type=Path, help="output directory for TLG.fst and words.txt")
    p.add_argument("--lm", type=Path, help="ARPA LM (speech train-lm); without it a word loop")
    p.add_argument("--lexicon", type=Path, help="lexicon to use instead of LANG_DIR/lexicon.txt")
    p.add_argument("--force", action="store_true", help="rebuild even if the graph is newer than its inputs")
    args = p.parse_args(argv)
    make_graph(args.lang_dir, args.graph_dir, args.lm, args.lexicon, args.force)
    return 0
