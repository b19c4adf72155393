"""From CTC outputs to words: greedy, or a lexicon-constrained beam search in which every
hypothesis is a sequence of lexicon words.

The beam search is torchaudio's ``ctc_decoder`` (flashlight-text): without a language model
a word loop, as digit recognisers have always decoded, which removes the non-words that
greedy character decoding produces ("fiven", "eght"); with an ARPA n-gram LM (KenLM inside
flashlight) each word also scores ``lm_weight * log p(word | history) + word_score``. Spellings are in the model's tokens
(characters, BPE pieces or phones); phone models always decode through a lexicon, their
own unless another is given.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from speech.asr.model import greedy_ctc_decode
from speech.errors import SpeechError
from speech.text.tokenizer import LEXICON, Tokenizer
from speech.text.tokens import BLANK, UNK

# log_probs [B, T, V] + lengths [B] -> one word string per utterance
Search = Callable[[torch.Tensor, torch.Tensor], list[str]]


class LexiconBeamSearch:
    """log_probs [B, T, V] + lengths [B] -> one word string per utterance."""

    def __init__(self, tokenizer: Tokenizer, lexicon: str | Path, beam_size: int = 20,
                 lm: str | Path | None = None, lm_weight: float = 1.0, word_score: float = 0.0):
        from torchaudio.models.decoder import ctc_decoder  # needs flashlight-text

        lexicon = Path(lexicon)
        tokens = tokenizer.table
        boundary = tokenizer.word_boundary
        self._boundary_id = tokens.symbols.index(boundary)
        known = set(tokens.symbols)
        lines = []
        try:
            text = lexicon.read_text(encoding="utf-8")
        except OSError as e:
            raise SpeechError(f"{lexicon}: cannot read the lexicon ({e.strerror})") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            word, *spelling = line.split()
            unknown = [t for t in spelling if t not in known]
            if not spelling or unknown:
                raise SpeechError(f"{lexicon}:{lineno}: '{line}' needs a spelling in tokens of the model "
                                  f"(unknown: {' '.join(unknown) or 'none given'})")
            # flashlight expects the word-boundary token at the end of every spelling; units
            # without one (BPE marks word starts, phones have none) use the blank
            end = f" {boundary}" if boundary != BLANK else ""
            lines.append(f"{word} {' '.join(spelling)}{end}\n")
        if not lines:
            raise SpeechError(f"{lexicon}: the lexicon is empty")
        fd, tmp = tempfile.mkstemp(suffix=".lexicon")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(lines)
            if lm is not None and not Path(lm).is_file():
                raise SpeechError(f"{lm}: no such language model; make one with speech train-lm")
            self._decoder = ctc_decoder(lexicon=tmp, tokens=tokens.symbols, lm=str(lm) if lm else None,
                                        beam_size=beam_size, lm_weight=lm_weight if lm else 0.0,
                                        word_score=word_score, blank_token=BLANK, sil_token=boundary,
                                        unk_word=UNK)
        finally:
            os.unlink(tmp)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        # flashlight ends a word only on the boundary token, which a CTC model does not emit
        # after the last word: without one more frame holding it, the search prefers a
        # shorter last word ("one" -> "on", "oh" dropped). Measured on the digits test set.
        log_probs = log_probs.detach().float().cpu()
        lengths = lengths.cpu().long()
        b, t, v = log_probs.shape
        padded = torch.full((b, t + 1, v), -1e4)
        padded[:, :t] = log_probs
        rows = torch.arange(b)
        padded[rows, lengths] = -1e4  # in a padded batch this frame held padding output
        padded[rows, lengths, self._boundary_id] = 0.0
        results = self._decoder(padded.contiguous(), (lengths + 1).int())
        return [" ".join(r[0].words) if r else "" for r in results]


def make_search(tokenizer: Tokenizer, model_dir: Path, lexicon: str | Path | None = None,
                beam_size: int = 20, lm: str | Path | None = None, lm_weight: float = 1.0,
                word_score: float = 0.0, graph: str | Path | None = None) -> Search:
    """With ``graph``, the WFST search through GRAPH/TLG.fst (speech make-graph); else greedy
    CTC for character and BPE models without ``lexicon``; otherwise the lexicon beam search
    (phone models default to their own lexicon.txt), with ``lm`` if given."""
    if graph is not None:
        if lexicon is not None or lm is not None or word_score:
            raise SpeechError("--graph already holds the lexicon and LM; leave out --lexicon, --lm and --word-score")
        from speech.asr.wfst import WfstSearch

        return WfstSearch(graph, lm_weight=lm_weight)
    if lm is not None and lexicon is None and tokenizer.greedy_gives_words:
        raise SpeechError("an LM needs a lexicon to search (--lexicon LANG_DIR/lexicon.txt)")
    if lexicon is None and not tokenizer.greedy_gives_words:
        lexicon = model_dir / LEXICON
    if lexicon is not None:
        return LexiconBeamSearch(tokenizer, lexicon, beam_size, lm, lm_weight, word_score)

    def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return [tokenizer.decode(ids) for ids in greedy_ctc_decode(log_probs, lengths)]

    return greedy
