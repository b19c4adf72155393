"""Lexicon-constrained CTC beam search: every hypothesis is a sequence of lexicon words.

Uses torchaudio's ``ctc_decoder`` (flashlight-text's beam search) with no language model:
a word loop, as digit recognisers have always decoded, which removes the non-words that
greedy character decoding produces ("fiven", "eght").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from speech.errors import SpeechError
from speech.text.tokens import BLANK, SPACE, UNK, TokenTable


class LexiconBeamSearch:
    """log_probs [B, T, V] + lengths [B] -> one word string per utterance."""

    def __init__(self, tokens: TokenTable, lexicon: str | Path, beam_size: int = 20):
        from torchaudio.models.decoder import ctc_decoder  # needs flashlight-text

        lexicon = Path(lexicon)
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
            # flashlight expects the word-boundary token at the end of every spelling
            lines.append(f"{word} {' '.join(spelling)} {SPACE}\n")
        if not lines:
            raise SpeechError(f"{lexicon}: the lexicon is empty")
        fd, tmp = tempfile.mkstemp(suffix=".lexicon")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(lines)
            self._decoder = ctc_decoder(lexicon=tmp, tokens=tokens.symbols, lm=None, beam_size=beam_size,
                                        blank_token=BLANK, sil_token=SPACE, unk_word=UNK)
        finally:
            os.unlink(tmp)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        results = self._decoder(log_probs.detach().float().cpu().contiguous(), lengths.cpu().int())
        return [" ".join(r[0].words) if r else "" for r in results]
