"""Choosing and describing the search that turns CTC outputs into words.

- :data:`Search`: log_probs [B, T, V] + lengths [B] -> one word string per utterance; greedy
  CTC, the flashlight lexicon search (:mod:`speech.asr.lexicon_search`) or the WFST search
  (:mod:`speech.asr.wfst_search`) all fit it, and :func:`make_search` builds any of them.
- :class:`DecodingSetup`: which search, with which lexicon, LM or graph and which weights,
  as a small YAML file. ``speech decode-asr`` writes one into every decode dir;
  ``speech pick-decoding`` copies the one with the best dev WER into the model dir, where
  ``speech transcribe`` finds it, so that a model decodes as well as the recipe's best
  system with no flags.
- The LM weight and word score that ``speech tune-lm`` chooses, as YAML
  (:func:`save_lm_params`, :func:`load_lm_params`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import yaml

from speech.config import read_mapping
from speech.ctc import greedy_ctc_decode
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.text.tokenizer import LEXICON, Tokenizer

# log_probs [B, T, V] + lengths [B] -> one word string per utterance
Search = Callable[[torch.Tensor, torch.Tensor], list[str]]

DECODING = "decoding.yaml"  # a decode dir's or a model dir's decoding setup
SEARCHES = ("greedy", "lexicon", "wfst")


def make_search(tokenizer: Tokenizer, model_dir: Path, lexicon: str | Path | None = None,
                beam_size: int = 20, lm: str | Path | None = None, lm_weight: float = 1.0,
                word_score: float = 0.0, graph: str | Path | None = None) -> Search:
    """With ``graph``, the WFST search through GRAPH/TLG.fst (speech make-graph) with the same
    objective as the lexicon search (LM weight, word score, final boundary frame); else greedy
    CTC for character and BPE models without ``lexicon``; otherwise the lexicon beam search
    (phone models default to their own lexicon.txt), with ``lm`` if given."""
    if beam_size < 1:
        raise SpeechError(f"--beam-size {beam_size}: give 1 or more hypotheses")
    if graph is not None:
        if lexicon is not None or lm is not None:
            raise SpeechError("--graph already holds the lexicon and LM; leave out --lexicon and --lm")
        from speech.asr.wfst_search import WfstSearch

        boundary_id = tokenizer.table.symbols.index(tokenizer.word_boundary)
        return WfstSearch(graph, boundary_id, lm_weight=lm_weight, word_score=word_score)
    if lm is not None and lexicon is None and tokenizer.greedy_gives_words:
        raise SpeechError("an LM needs a lexicon to search (--lexicon LANG_DIR/lexicon.txt)")
    if lexicon is None and not tokenizer.greedy_gives_words:
        lexicon = model_dir / LEXICON
    if lexicon is not None:
        from speech.asr.lexicon_search import LexiconBeamSearch

        return LexiconBeamSearch(tokenizer, lexicon, beam_size, lm, lm_weight, word_score)

    def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return [tokenizer.decode(ids) for ids in greedy_ctc_decode(log_probs, lengths)]

    return greedy


@dataclass(frozen=True)
class DecodingSetup:
    """The arguments of :func:`make_search`: no lexicon, LM nor graph is greedy CTC (or, for
    phone models, their own lexicon)."""

    lexicon: Path | None = None
    lm: Path | None = None
    graph: Path | None = None
    beam_size: int = 20
    lm_weight: float = 1.0
    word_score: float = 0.0

    @property
    def search(self) -> str:
        return "wfst" if self.graph else "lexicon" if self.lexicon or self.lm else "greedy"

    def make(self, tokenizer: Tokenizer, model_dir: Path) -> Search:
        return make_search(tokenizer, model_dir, self.lexicon, self.beam_size, self.lm, self.lm_weight,
                           self.word_score, self.graph)

    def with_options(self, beam_size: int | None = None, lm_weight: float | None = None,
                     word_score: float | None = None) -> DecodingSetup:
        """This setup with the options that are given (not None) replaced."""
        given = {"beam_size": beam_size, "lm_weight": lm_weight, "word_score": word_score}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def save(self, path: str | Path, **about) -> None:
        """Write it as YAML, atomically, with its files' paths relative to the file's own
        directory (so a recipe dir can move as a whole); ``about`` adds fields for the
        reader (the dev WER, where it was chosen from) that :meth:`load` ignores."""
        path = Path(path)
        base = path.parent.absolute()
        data: dict = {"search": self.search}
        for key in ("lexicon", "lm", "graph"):
            value = getattr(self, key)
            if value is not None:
                data[key] = os.path.relpath(Path(value).absolute(), base)
        if self.search != "greedy":
            data.update(beam_size=self.beam_size, lm_weight=self.lm_weight, word_score=self.word_score)
        with atomic_write(path) as f:
            yaml.safe_dump({**data, **about}, f, sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> DecodingSetup:
        """Read a file written by :meth:`save`; a lexicon, LM or graph that is not where it
        says (moved, deleted) is a SpeechError naming the file and the path."""
        path = Path(path)
        data = read_mapping(path, "decoding setup", "write it with speech pick-decoding")
        if data.get("search") not in SEARCHES:
            raise SpeechError(f"{path}: search is {data.get('search')!r}, not one of {', '.join(SEARCHES)}; "
                              "write the file with speech pick-decoding")
        files = {}
        for key in ("lexicon", "lm", "graph"):
            if data.get(key) is None:
                continue
            resolved = path.parent / str(data[key])
            if not resolved.exists():
                where = os.path.normpath(resolved.absolute())
                raise SpeechError(f"{path}: {key} {data[key]} ({where}) does not exist; was it moved? fix the path "
                                  f"in {path.name}, or decode with --greedy or other options")
            files[key] = resolved
        numbers = {key: _number(path, data, key, kind) for key, kind in
                   (("beam_size", int), ("lm_weight", float), ("word_score", float)) if key in data}
        return cls(**files, **numbers)


def _number(path: Path, data: dict, key: str, kind: type) -> float:
    value = data.get(key)
    # bool is an int to Python, and YAML reads yes/no as booleans
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or (kind is int and value != int(value))):
        raise SpeechError(f"{path}: {key} is {value!r}, not {'an integer' if kind is int else 'a number'}; "
                          f"write it as '{key}: {'20' if kind is int else '1.0'}'")
    return kind(value)


def save_lm_params(path: str | Path, lm_weight: float, word_score: float, **about) -> None:
    """Write the LM weight and word score (``speech tune-lm``'s choice) as YAML, atomically;
    ``about`` adds fields for the reader (dev WER, dev set, LM, beam) that loading ignores."""
    with atomic_write(path) as f:
        yaml.safe_dump({"lm_weight": float(lm_weight), "word_score": float(word_score), **about}, f,
                       sort_keys=False)


def load_lm_params(path: str | Path) -> tuple[float, float]:
    """(lm_weight, word_score) from a file written by :func:`save_lm_params`."""
    path = Path(path)
    data = read_mapping(path, "LM parameter", "make it with speech tune-lm (it writes 'lm_weight: W' and "
                      "'word_score: S' lines)")
    return _number(path, data, "lm_weight", float), _number(path, data, "word_score", float)
