"""The decoding graph of a GMM-HMM: ``speech make-graph-hmm MODEL_DIR GRAPH_DIR [--lm ARPA]``.

HCLG (:mod:`speech.hmm.graph`) is built once, as Kaldi's utils/mkgraph.sh does, and every
``speech decode-hmm --graph GRAPH_DIR`` reads it: with a 3-gram over a large vocabulary it
takes minutes, and tuning the word penalty decodes dev several times.

Writes GRAPH_DIR/HCLG.fst, GRAPH_DIR/words.txt and GRAPH_DIR/model_id (atomically, model_id
last). HCLG holds part of the model: its phones and tree (the pdf of each transition id) and
its self-loop probabilities (Kaldi bakes them in too), so model_id fingerprints those, and
decoding with a graph of another model, or of an earlier iteration, is a one-line error.
Skipped when complete, newer than the lexicon and LM, and made from this model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.hmm.model import TREE, HmmSystem, load_system
from speech.stage import skip
from speech.text.tokenizer import LEXICON, read_lexicon

HCLG = "HCLG.fst"
MODEL_ID = "model_id"
MAKER = "speech make-graph-hmm"


def graph_model_id(system: HmmSystem) -> str:
    """sha256 of everything of ``system`` that HCLG depends on."""
    cfg = system.cfg
    h = hashlib.sha256(json.dumps([cfg.phones, cfg.states, cfg.context_width, cfg.decode.self_loop_scale]).encode())
    h.update(system.tree.to_text().encode("utf-8"))
    h.update(system.loop_logprob.float().numpy().tobytes())
    return h.hexdigest()


def make_graph_hmm(model_dir: str | Path, graph_dir: str | Path, lm: str | Path | None = None,
                   lexicon: str | Path | None = None, force: bool = False) -> bool:
    """Build and write GRAPH_DIR (see the module docstring); False when skipped."""
    from speech.graph.build import WORDS, write_graph
    from speech.hmm.graph import hmm_graph

    model_dir, graph_dir = Path(model_dir), Path(graph_dir)
    lm = Path(lm) if lm is not None else None
    if lm is not None and not lm.is_file():
        raise SpeechError(f"{lm}: no such language model; make one with speech train-lm")
    lexicon_path = Path(lexicon) if lexicon is not None else model_dir / LEXICON
    system = load_system(model_dir)
    model_id = graph_model_id(system)

    def same_model() -> bool:
        return (graph_dir / MODEL_ID).read_text(encoding="utf-8").strip() == model_id

    outputs = [graph_dir / HCLG, graph_dir / WORDS, graph_dir / MODEL_ID]
    inputs = [lexicon_path, model_dir / TREE] + ([lm] if lm else [])
    if skip(MAKER, f"{graph_dir / HCLG} is newer than its inputs and made from {model_dir}", outputs, inputs,
            same_model, force):
        return False
    (graph_dir / MODEL_ID).unlink(missing_ok=True)
    t0 = time.time()
    words = read_lexicon(lexicon_path, system.cfg.phones) if lexicon is not None else None
    graph, symbols = hmm_graph(system, words, lm)
    write_graph(graph_dir, graph, symbols, HCLG)
    with atomic_write(graph_dir / MODEL_ID) as f:
        f.write(model_id + "\n")
    print(f"{MAKER}: {graph_dir / HCLG} ({graph.num_states} states) in {time.time() - t0:.1f} s")
    return True


def read_graph_hmm(graph_dir: str | Path, system: HmmSystem, model_dir: Path):
    """(HCLG, id -> word) of GRAPH_DIR, checked to be made from ``system``."""
    from speech.graph.build import read_graph

    graph_dir = Path(graph_dir)
    stored = (graph_dir / MODEL_ID).read_text(encoding="utf-8").strip() if (graph_dir / MODEL_ID).is_file() else None
    if stored is None:
        raise SpeechError(f"{graph_dir}: no {MODEL_ID}, so not a whole GMM-HMM graph; make it with "
                          f"{MAKER} {model_dir} {graph_dir}")
    if stored != graph_model_id(system):
        raise SpeechError(f"{graph_dir} was made from another model than {model_dir} (its tree or transition "
                          f"probabilities differ); rebuild it with {MAKER} {model_dir} {graph_dir} --force")
    return read_graph(graph_dir, HCLG, MAKER)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=MAKER, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="GMM-HMM model dir (speech train-mono / train-tri)")
    p.add_argument("graph_dir", type=Path, help="output directory for HCLG.fst, words.txt and model_id")
    p.add_argument("--lm", type=Path, help="ARPA word LM (speech train-lm); without it a word loop")
    p.add_argument("--lexicon", type=Path, help="phone lexicon (default: the model's lexicon.txt)")
    p.add_argument("--force", action="store_true", help="rebuild even if the graph is complete and up to date")
    args = p.parse_args(argv)
    make_graph_hmm(args.model_dir, args.graph_dir, args.lm, args.lexicon, args.force)
    return 0
