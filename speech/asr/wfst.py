"""WFST decoding of CTC outputs as EESEN does: a search graph TLG = T o min(det(L o G)).

- T, the CTC topology: one state per token (the blank's is the start); reading token k
  moves to k's state and outputs k unless it repeats the state's token or is the blank, so
  any frame sequence with repeats and blanks collapses to its token sequence.
- L, the lexicon: word spellings in the model's tokens (characters, BPE pieces or phones),
  the word on the first arc. Spellings that are prefixes of others or shared by several
  words get disambiguation symbols #1, #2, ... (as Kaldi's add_lex_disambig.pl); #0 passes
  G's back-off arcs. With characters every word ends with the boundary ``<space>`` and
  more boundaries may come between words, as in flashlight's lexicon search (its silence
  token); the search appends a boundary frame for the last word, as flashlight's does.
- G, the grammar: an ARPA n-gram LM converted by kaldilm (Kaldi's arpa2fst), or without an
  LM a loop over the lexicon's words.

Graphs are built with kaldifst (OpenFst) and searched with kaldi-decoder's FasterDecoder
(Kaldi's beam search) over the CTC log-probabilities scaled by 1 / lm_weight, Kaldi's
acoustic scale; a word score (flashlight's per-word bonus) is a cost on every word arc,
composed into the graph when the search is made, so one graph serves every tuned pair.
Both searches thus rank paths by the same score, am + lm_weight * ln p(words) + word_score
* |words|. Labels in the graph are token id + 1 (0 is epsilon).

``speech make-graph LANG_DIR GRAPH_DIR [--lm ARPA]`` writes GRAPH_DIR/TLG.fst and
GRAPH_DIR/words.txt; ``speech decode-asr --graph GRAPH_DIR`` decodes with it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from speech.asr.lexicon_search import append_boundary_frame
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.lm.ngram import ArpaModel
from speech.text.tokenizer import LEXICON, Tokenizer, load_tokenizer, read_lexicon
from speech.text.tokens import BLANK, SPACE

GRAPH, WORDS = "TLG.fst", "words.txt"
EPS, BACKOFF, BOS, EOS = "<eps>", "#0", "<s>", "</s>"


def _fst():
    import kaldifst  # imported where graphs are made or searched: the rest of the toolkit does not need it

    return kaldifst


def add_disambig(entries: list[tuple[str, list[str]]]) -> tuple[list[tuple[str, list[str]]], int]:
    """Append #1, #2, ... to spellings that are another's prefix or shared by several
    words; returns the new entries and the highest disambiguation index used."""
    count = Counter(tuple(s) for _, s in entries)
    prefixes = {tuple(s[:i]) for _, s in entries for i in range(1, len(s))}
    used: dict[tuple[str, ...], int] = defaultdict(int)
    out, highest = [], 0
    for word, spelling in entries:
        key = tuple(spelling)
        if count[key] > 1 or key in prefixes:
            used[key] += 1
            highest = max(highest, used[key])
            spelling = [*spelling, f"#{used[key]}"]
        out.append((word, spelling))
    return out, highest


def ctc_topology(num_tokens: int, disambig_labels: list[int]):
    """T: input token id + 1, output token id + 1 once per run of a token (blank: nothing);
    disambiguation labels pass as epsilon:#k self-loops."""
    fst_lib = _fst()
    t = fst_lib.StdVectorFst()
    for _ in range(num_tokens):
        t.set_final(state=t.add_state(), weight=0)
    t.start = 0
    for i in range(num_tokens):
        for k in range(num_tokens):
            out = 0 if (k == i or k == 0) else k + 1
            t.add_arc(state=i, arc=fst_lib.StdArc(ilabel=k + 1, olabel=out, weight=0, nextstate=k))
        for d in disambig_labels:
            t.add_arc(state=i, arc=fst_lib.StdArc(ilabel=0, olabel=d, weight=0, nextstate=i))
    return t


def lexicon_fst(entries: list[tuple[str, list[str]]], token_label: dict[str, int], word_id: dict[str, int]):
    """L: a loop through state 0 spelling each word (its spelling ends with <space> for
    characters); #0:#0 and (characters) <space>:eps loops."""
    fst_lib = _fst()
    lex = fst_lib.StdVectorFst()
    lex.start = lex.add_state()
    lex.set_final(state=0, weight=0)
    for word, spelling in entries:
        state = 0
        for j, symbol in enumerate(spelling):
            nxt = 0 if j == len(spelling) - 1 else lex.add_state()
            lex.add_arc(state=state, arc=fst_lib.StdArc(ilabel=token_label[symbol],
                                                        olabel=word_id[word] if j == 0 else 0, weight=0,
                                                        nextstate=nxt))
            state = nxt
    lex.add_arc(state=0, arc=fst_lib.StdArc(ilabel=token_label[BACKOFF], olabel=word_id[BACKOFF], weight=0,
                                            nextstate=0))
    if SPACE in token_label:
        lex.add_arc(state=0, arc=fst_lib.StdArc(ilabel=token_label[SPACE], olabel=0, weight=0, nextstate=0))
    return lex


def word_loop(words: list[str], word_id: dict[str, int]):
    """G without an LM: every word, any number of times, all alike."""
    fst_lib = _fst()
    g = fst_lib.StdVectorFst()
    g.start = g.add_state()
    g.set_final(state=0, weight=0)
    for w in words:
        g.add_arc(state=0, arc=fst_lib.StdArc(ilabel=word_id[w], olabel=word_id[w], weight=0, nextstate=0))
    return g


def build_graph(tokenizer: Tokenizer, lexicon: dict[str, list[list[str]]], arpa: Path | None = None):
    """(TLG, id -> word)."""
    fst_lib = _fst()
    entries = [(w, s) for w, spellings in lexicon.items() for s in spellings]
    unknown = sorted({t for _, s in entries for t in s} - set(tokenizer.table.symbols))
    if unknown:
        raise SpeechError(f"the lexicon uses symbols the model does not have: {' '.join(unknown[:5])}")
    if tokenizer.word_boundary != BLANK:
        entries = [(w, [*s, tokenizer.word_boundary]) for w, s in entries]
    entries, highest = add_disambig(entries)
    symbols = tokenizer.table.symbols
    token_label = {s: i + 1 for i, s in enumerate(symbols)}
    disambig = [f"#{k}" for k in range(highest + 1)]
    token_label.update({d: len(symbols) + 1 + k for k, d in enumerate(disambig)})

    words = sorted(lexicon)
    lm_words = [] if arpa is None else [w for w in ArpaModel.load(arpa).vocab if w not in (BOS, EOS)]
    vocabulary = [EPS] + sorted(set(words) | set(lm_words)) + [BACKOFF, BOS, EOS]
    word_id = {w: i for i, w in enumerate(vocabulary)}
    if arpa is None:
        g = word_loop(words, word_id)
    else:
        import kaldilm

        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / WORDS
            table.write_text("".join(f"{w} {i}\n" for w, i in word_id.items()), encoding="utf-8")
            g = fst_lib.compile(kaldilm.arpa2fst(str(arpa), disambig_symbol=BACKOFF, read_symbol_table=str(table),
                                                 max_arpa_warnings=0))
    lex = lexicon_fst(entries, token_label, word_id)
    fst_lib.arcsort(lex, sort_type="olabel")
    fst_lib.arcsort(g, sort_type="ilabel")
    lg = fst_lib.compose(lex, g)
    lg = fst_lib.StdVectorFst(lg) if not isinstance(lg, fst_lib.StdVectorFst) else lg
    if fst_lib.determinize_star(lg):  # True means it stopped early (max_states), not success
        raise SpeechError("the lexicon/grammar graph could not be determinized")
    fst_lib.minimize_encoded(lg)
    fst_lib.arcsort(lg, sort_type="ilabel")
    t = ctc_topology(len(symbols), [token_label[d] for d in disambig])
    fst_lib.arcsort(t, sort_type="olabel")
    tlg = fst_lib.compose(t, lg)
    tlg = fst_lib.StdVectorFst(tlg) if not isinstance(tlg, fst_lib.StdVectorFst) else tlg
    fst_lib.connect(tlg)
    fst_lib.arcsort(tlg, sort_type="ilabel")
    if tlg.num_states == 0:
        raise SpeechError("the decoding graph is empty: no lexicon word is in the LM's vocabulary")
    return tlg, {i: w for w, i in word_id.items()}


class WfstSearch:
    """log_probs [B, T, V] + lengths [B] -> one word string per utterance, by Kaldi's beam
    search through TLG.

    boundary_id: the tokenizer's word-boundary token (the blank's id for units without one),
    given one extra frame at the end as the lexicon search does.
    """

    def __init__(self, graph_dir: str | Path, boundary_id: int, beam: float = 16.0, max_active: int = 7000,
                 lm_weight: float = 1.0, word_score: float = 0.0):
        fst_lib = _fst()
        graph_dir = Path(graph_dir)
        if not (graph_dir / GRAPH).is_file():
            raise SpeechError(f"{graph_dir}: no {GRAPH}; make it with speech make-graph")
        self.graph = fst_lib.StdVectorFst.read(str(graph_dir / GRAPH))
        self.words = {}
        for line in (graph_dir / WORDS).read_text(encoding="utf-8").splitlines():
            word, i = line.split()
            self.words[int(i)] = word
        if word_score:
            # the graph's scores are divided by lm_weight (acoustics scaled by 1 / lm_weight),
            # so flashlight's word_score is word_score / lm_weight here
            self.graph = self._with_word_cost(-word_score / lm_weight)
        self.boundary_id = boundary_id
        self.beam, self.max_active = beam, max_active
        self.scale = 1.0 / lm_weight

    def _with_word_cost(self, cost: float):
        """TLG o W, where W is one state looping over every word with ``cost`` (other
        output labels, #0 and sentence marks, cost nothing). About 3 s for a 1.4M-state graph."""
        fst_lib = _fst()
        w = fst_lib.StdVectorFst()
        w.start = w.add_state()
        w.set_final(state=0, weight=0)
        for i, word in sorted(self.words.items()):
            if i:
                w.add_arc(state=0, arc=fst_lib.StdArc(ilabel=i, olabel=i, nextstate=0,
                                                      weight=0 if word in (BACKOFF, BOS, EOS) else cost))
        fst_lib.arcsort(self.graph, sort_type="olabel")
        tlg = fst_lib.compose(self.graph, w)
        tlg = fst_lib.StdVectorFst(tlg) if not isinstance(tlg, fst_lib.StdVectorFst) else tlg
        fst_lib.arcsort(tlg, sort_type="ilabel")
        return tlg

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

        fst_lib = _fst()
        log_probs, lengths = append_boundary_frame(log_probs, lengths, self.boundary_id)
        out = []
        for i in range(log_probs.shape[0]):
            scores = (log_probs[i, : int(lengths[i])] * self.scale).numpy()
            decoder = FasterDecoder(self.graph, FasterDecoderOptions(beam=self.beam, max_active=self.max_active))
            decoder.decode(DecodableCtc(np.ascontiguousarray(scores)))
            ok, path = decoder.get_best_path()
            if not ok:
                out.append("")
                continue
            ok, _, word_ids, _ = fst_lib.get_linear_symbol_sequence(path)
            out.append(" ".join(self.words[w] for w in word_ids if w) if ok else "")
        return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech make-graph", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lang_dir", type=Path, help="language dir (tokens.txt, tokenizer.yaml, lexicon.txt)")
    p.add_argument("graph_dir", type=Path, help="output directory for TLG.fst and words.txt")
    p.add_argument("--lm", type=Path, help="ARPA LM (speech train-lm); without it a word loop")
    p.add_argument("--lexicon", type=Path, help="lexicon to use instead of LANG_DIR/lexicon.txt")
    p.add_argument("--force", action="store_true", help="rebuild even if the graph is newer than its inputs")
    args = p.parse_args(argv)

    inputs = [args.lexicon or args.lang_dir / LEXICON, args.lang_dir / "tokens.txt"] + ([args.lm] if args.lm else [])
    outputs = [args.graph_dir / GRAPH, args.graph_dir / WORDS]
    if not args.force and all(o.is_file() for o in outputs) and all(i.is_file() for i in inputs) and (
            min(o.stat().st_mtime_ns for o in outputs) > max(i.stat().st_mtime_ns for i in inputs)):
        print(f"speech make-graph: {args.graph_dir / GRAPH} is newer than its inputs; skipping (--force to redo)")
        return 0
    t0 = time.time()
    tokenizer = load_tokenizer(args.lang_dir)
    lexicon = read_lexicon(args.lexicon or args.lang_dir / LEXICON)
    if args.lm is not None and not args.lm.is_file():
        raise SpeechError(f"{args.lm}: no such language model; make one with speech train-lm")
    tlg, words = build_graph(tokenizer, lexicon, args.lm)
    args.graph_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.graph_dir) as tmp:
        tmp_graph = Path(tmp) / GRAPH
        tlg.write(str(tmp_graph))
        tmp_graph.replace(args.graph_dir / GRAPH)
    with atomic_write(args.graph_dir / WORDS) as f:
        f.writelines(f"{w} {i}\n" for i, w in sorted(words.items()))
    print(f"speech make-graph: {args.graph_dir / GRAPH} ({tlg.num_states} states) in {time.time() - t0:.1f} s")
    return 0
