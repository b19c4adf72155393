"""From CTC outputs to words by a lexicon-constrained beam search in which every hypothesis
is a sequence of lexicon words.

The beam search is torchaudio's ``ctc_decoder`` (flashlight-text): without a language model
a word loop, as digit recognisers have always decoded, which removes the non-words that
greedy character decoding produces ("fiven", "eght"); with an ARPA n-gram LM (KenLM inside
flashlight) each word also scores ``lm_weight * ln p(word | history) + word_score``.
Spellings are in the model's tokens (characters, BPE pieces or phones), read by the
tokenizer's lexicon reader, which names the line of a spelling the model cannot emit.

The search also gives n-best lists with flashlight's acoustic and LM scores, and
``with_weights`` re-weights a loaded search without reading the LM again (``speech
tune-lm`` searches a grid of weights that way).
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from speech.ctc import append_boundary_frame
from speech.errors import SpeechError
from speech.text.tokenizer import Tokenizer, read_lexicon
from speech.text.tokens import BLANK, UNK

# KenLM scores in log10; weights here apply to natural-log probabilities, as the acoustic
# scores and the WFST graph's weights are, so one --lm-weight means the same in both searches
LN10 = math.log(10.0)


@dataclass(frozen=True)
class Hypothesis:
    """One entry of an n-best list, with flashlight's scores:
    ``score = am_score + lm_weight * lm_score + word_score * len(words.split())``."""

    words: str
    score: float  # what the search ranks by
    am_score: float  # summed CTC log-probabilities (natural log) of the frames' path
    lm_score: float  # ln p(words </s>) by the LM, unweighted; 0 without an LM


class LexiconBeamSearch:
    """log_probs [B, T, V] + lengths [B] -> one word string per utterance; :meth:`nbest` gives
    the ranked hypotheses with their scores."""

    def __init__(self, tokenizer: Tokenizer, lexicon: str | Path, beam_size: int = 20,
                 lm: str | Path | None = None, lm_weight: float = 1.0, word_score: float = 0.0):
        from flashlight.lib.text.dictionary import load_words
        from torchaudio.models.decoder import ctc_decoder  # needs flashlight-text

        tokens = tokenizer.table
        boundary = tokenizer.word_boundary
        self._boundary_id = tokens.symbols.index(boundary)
        # flashlight expects the word-boundary token at the end of every spelling; units
        # without one (BPE marks word starts, phones have none) use the blank
        end = f" {boundary}" if boundary != BLANK else ""
        lines = [f"{word} {' '.join(spelling)}{end}\n"
                 for word, spellings in read_lexicon(lexicon, tokens.symbols).items() for spelling in spellings]
        fd, tmp = tempfile.mkstemp(suffix=".lexicon")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(lines)
            if lm is not None and not Path(lm).is_file():
                raise SpeechError(f"{lm}: no such language model; make one with speech train-lm")
            # ctc_decoder reads the lexicon and loads the LM (KenLM) once; its decoder is
            # replaced by _decoder_for, which reuses both for any LM weight and word score
            self._loaded = ctc_decoder(lexicon=tmp, tokens=tokens.symbols, lm=str(lm) if lm else None,
                                       blank_token=BLANK, sil_token=boundary, unk_word=UNK)
            self._lexicon = load_words(tmp)  # word -> its spellings, as ctc_decoder read them
        finally:
            os.unlink(tmp)
        self._boundary, self._beam_size, self._has_lm = boundary, beam_size, lm is not None
        self._decoder = self._decoder_for(lm_weight, word_score)

    def _decoder_for(self, lm_weight: float, word_score: float):
        """A flashlight decoder over the loaded lexicon and LM with these weights. Flashlight
        fixes its options at construction, so new weights need a new decoder; the trie it
        builds costs one LM lookup per word, the LM is not reloaded."""
        from flashlight.lib.text.decoder import CriterionType, LexiconDecoderOptions
        from torchaudio.models.decoder import CTCDecoder

        loaded = self._loaded
        options = LexiconDecoderOptions(  # torchaudio's ctc_decoder defaults but for beam and weights
            beam_size=self._beam_size, beam_size_token=loaded.tokens_dict.index_size(), beam_threshold=50,
            lm_weight=lm_weight * LN10 if self._has_lm else 0.0, word_score=word_score, unk_score=float("-inf"),
            sil_score=0.0, log_add=False, criterion_type=CriterionType.CTC)
        return CTCDecoder(nbest=1, lexicon=self._lexicon, word_dict=loaded.word_dict, tokens_dict=loaded.tokens_dict,
                          lm=loaded.lm, decoder_options=options, blank_token=BLANK, sil_token=self._boundary,
                          unk_word=UNK)

    def with_weights(self, lm_weight: float, word_score: float) -> LexiconBeamSearch:
        """The same search (lexicon, LM, beam) with another LM weight and word score."""
        other = copy.copy(self)
        other._decoder = self._decoder_for(lm_weight, word_score)
        return other

    def nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor, n: int) -> list[list[Hypothesis]]:
        """log_probs [B, T, V] + lengths [B] -> per utterance up to ``n`` hypotheses, best
        first (at most the beam size). Their word sequences differ: flashlight merges
        hypotheses that reach the same lexicon node with the same LM state, and after the
        final boundary frame every hypothesis is at the root, its LM state set by its words."""
        padded, lengths = append_boundary_frame(log_probs, lengths, self._boundary_id)
        word_dict = self._decoder.word_dict
        out = []
        for i in range(padded.shape[0]):
            # flashlight's own results (sorted best first): torchaudio's hypotheses drop the
            # acoustic and LM scores
            results = self._decoder.decoder.decode(padded[i].data_ptr(), int(lengths[i]), padded.shape[2])[:n]
            out.append([Hypothesis(" ".join(word_dict.get_entry(w) for w in r.words if w >= 0), r.score,
                                   r.emittingModelScore, r.lmScore * LN10) for r in results])
        return out

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return [hyps[0].words if hyps else "" for hyps in self.nbest(log_probs, lengths, 1)]
