"""WFST search of CTC outputs through a TLG graph (``speech make-graph``), as EESEN decodes.

Kaldi's beam search (kaldi-decoder's FasterDecoder) runs over the CTC log-probabilities
scaled by 1 / lm_weight, Kaldi's acoustic scale; a word score (flashlight's per-word bonus)
is a cost on every word arc, composed into the graph when the search is made, so one
graph serves every tuned pair. The flashlight lexicon search and this one thus rank paths
by the same score, am + lm_weight * ln p(words) + word_score * |words|.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from speech.ctc import append_boundary_frame
from speech.graph.build import read_graph, with_word_cost


class WfstSearch:
    """log_probs [B, T, V] + lengths [B] -> one word string per utterance, by Kaldi's beam
    search through GRAPH_DIR/TLG.fst.

    boundary_id: the tokenizer's word-boundary token (the blank's id for units without one),
    given one extra frame at the end as the lexicon search does.
    """

    def __init__(self, graph_dir: str | Path, boundary_id: int, beam: float = 16.0, max_active: int = 7000,
                 lm_weight: float = 1.0, word_score: float = 0.0):
        self.graph, self.words = read_graph(Path(graph_dir))
        if word_score:
            # the graph's scores are divided by lm_weight (acoustics scaled by 1 / lm_weight),
            # so flashlight's word_score is word_score / lm_weight here
            self.graph = with_word_cost(self.graph, self.words, -word_score / lm_weight)
        self.boundary_id = boundary_id
        self.beam, self.max_active = beam, max_active
        self.scale = 1.0 / lm_weight

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        import kaldifst
        from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

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
            ok, _, word_ids, _ = kaldifst.get_linear_symbol_sequence(path)
            out.append(" ".join(self.words[w] for w in word_ids if w) if ok else "")
        return out
