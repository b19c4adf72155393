"""HCLG for a GMM-HMM system: H o C o min(det(L o G)), as Kaldi's mkgraph.sh builds it.

L and G come from the shared graph code (:mod:`speech.graph.build`), the same as the CTC
system's TLG: the same ARPA LM and lexicon. Silence may come once at the start and after
each word, with probability 0.5, as in Kaldi's L (measured on the toy task of the tests:
free silence loops let a flat start's silence model absorb word ends, 51 % of phone
starts within a frame against 69 % with Kaldi's optional silence). C is Kaldi's context transducer
(kaldifst.compose_context, context width 1 for monophones, 3 for cross-word triphones), H
expands each context window into its tied states (:func:`speech.hmm.topology.hmm_transducer`).
H o CLG is determinized (Kaldi's fstdeterminizestar after fsttablecompose Ha.fst CLG.fst)
with the self-loops in place, and then C's disambiguation symbols are removed: the
triphones of a tree share pdf sequences, and without it the search spends tokens on copies
of one path (voices, 2000 leaves: 4.66M states before, 3.39M after; on 60 training
utterances at beam 13, 4.2 % WER before and 3.1 % after).
"""

from __future__ import annotations

import kaldifst

from speech.errors import SpeechError
from speech.graph.build import compose_topology, lexicon_grammar
from speech.hmm.model import HmmSystem
from speech.hmm.topology import SILENCE, hmm_transducer


def hmm_graph(system: HmmSystem, lexicon: dict[str, list[list[str]]] | None = None, arpa=None,
              transcript: list[str] | None = None) -> tuple[kaldifst.StdVectorFst, dict[int, str]]:
    """(HCLG, id -> word); G is the ARPA LM, else the ``transcript`` (a training graph), else
    a loop over the lexicon's words. lexicon: default the system's own."""
    lexicon = system.lexicon if lexicon is None else lexicon
    if transcript is not None:  # a graph per utterance: only its words
        lexicon = {w: lexicon[w] for w in set(transcript) if w in lexicon} or lexicon
    cfg = system.cfg
    lg = lexicon_grammar(list(cfg.phones), lexicon, arpa, transcript=transcript, silence=SILENCE)
    width = cfg.context_width
    clg, windows = kaldifst.compose_context(lg.disambig, width, width // 2, lg.fst)
    kaldifst.arcsort(clg, sort_type="ilabel")
    h = hmm_transducer(windows, system.tree.pdf, system.loop_logprob, system.topology.num_states(),
                       cfg.decode.self_loop_scale)
    hclg = compose_topology(h, clg)
    if kaldifst.determinize_star(hclg):  # True: stopped early, not success
        raise SpeechError("HCLG could not be determinized")
    num_disambig = sum(len(w) == 1 and w[0] <= 0 for w in windows)
    return _remove_disambig(hclg, 2 * system.gmms.num_pdfs, num_disambig), lg.words


def _remove_disambig(fst: kaldifst.StdVectorFst, num_tids: int, num_disambig: int) -> kaldifst.StdVectorFst:
    """``fst`` with the disambiguation input labels (num_tids + 1 and up, see
    :func:`hmm_transducer`) made epsilon, as Kaldi's fstrmsymbols: a composition with a
    one-state transducer, in C++, rather than a Python loop over millions of arcs."""
    m = kaldifst.StdVectorFst()
    hub = m.add_state()
    m.start = hub
    m.set_final(state=hub, weight=0)
    for label in range(1, num_tids + 1):
        m.add_arc(state=hub, arc=kaldifst.StdArc(ilabel=label, olabel=label, weight=0, nextstate=hub))
    for label in range(num_tids + 1, num_tids + 1 + num_disambig):
        m.add_arc(state=hub, arc=kaldifst.StdArc(ilabel=0, olabel=label, weight=0, nextstate=hub))
    return compose_topology(m, fst)
