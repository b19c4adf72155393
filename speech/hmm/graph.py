"""HCLG for a GMM-HMM system: H o C o min(det(L o G)), as Kaldi's mkgraph.sh builds it.

L and G come from the shared graph code (:mod:`speech.graph.build`), the same as the CTC
system's TLG: the same ARPA LM and lexicon. Silence may come once at the start and after
each word, with probability 0.5, as in Kaldi's L (measured on the toy task of the tests:
free silence loops let a flat start's silence model absorb word ends, 51 % of phone
starts within a frame against 69 % with Kaldi's optional silence). C is Kaldi's context transducer
(kaldifst.compose_context, context width 1 for monophones, 3 for cross-word triphones), H
expands each context window into its tied states (:func:`speech.hmm.topology.hmm_transducer`).
H o CLG is not determinized again, as the CTC graph is not: the search handles it.
"""

from __future__ import annotations

import kaldifst

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
    return compose_topology(h, clg), lg.words
