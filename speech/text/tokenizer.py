"""Output units of a CTC model: characters, BPE pieces (sentencepiece) or phones (CMUdict).

A language directory (``speech prepare-lang``) or a model directory holds a tokenizer as

    tokens.txt       ``<sym> <id>``: ``<blank>`` 0, ``<unk>`` 1, then the unit's symbols
    tokenizer.yaml   ``unit: char|bpe|phone`` (absent: char, the format of older dirs)
    bpe.model        the sentencepiece model (bpe)
    lexicon.txt      word -> its spelling in the unit's symbols, one pronunciation per line;
                     phone models encode a training word with its first pronunciation

Characters and BPE pieces spell words, so greedy CTC output is text; phone output becomes
words only through the lexicon (``speech decode-asr`` searches it for phone models).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from speech.config import load_config
from speech.errors import SpeechError
from speech.text.tokens import BLANK, SPACE, UNK, TokenTable

UNITS = ("char", "bpe", "phone")
TOKENS, CONFIG, BPE_MODEL, LEXICON = "tokens.txt", "tokenizer.yaml", "bpe.model", "lexicon.txt"


@dataclass
class TokenizerConfig:
    unit: str = "char"
    bpe_size: int = 0  # pieces asked for (bpe)


class Tokenizer:
    """Text <-> token ids of one unit. ``table`` indexes the model's output layer."""

    unit = "char"
    greedy_gives_words = True  # whether decode() of a greedy CTC path is the transcript

    def __init__(self, table: TokenTable):
        self.table = table

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def word_spans(self, text: str) -> list[tuple[str, int, int]]:
        """(word, index of its first token, index of its last token) in ``encode(text)``.

        Every unit encodes a text as its words' encodings in order, characters with one
        ``<space>`` between words."""
        separator = self.word_boundary == SPACE
        spans, pos = [], 0
        for i, word in enumerate(text.split()):
            pos += 1 if (i and separator) else 0
            n = len(self.encode(word))
            spans.append((word, pos, pos + n - 1))
            pos += n
        return spans

    @property
    def word_boundary(self) -> str:
        """The token a lexicon search puts between words (``<space>``, or the blank when the
        unit marks words otherwise)."""
        return SPACE if SPACE in self.table.symbols else BLANK

    def files(self, directory: Path) -> list[Path]:
        """The files of ``directory`` that make this tokenizer."""
        return [directory / TOKENS, directory / CONFIG]


class CharTokenizer(Tokenizer):
    unit = "char"

    def __init__(self, table: TokenTable):
        if SPACE not in table.symbols:
            raise SpeechError(f"a character token table needs {SPACE} (the word boundary)")
        super().__init__(table)

    def encode(self, text: str) -> list[int]:
        return self.table.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        return self.table.decode(ids)


class BpeTokenizer(Tokenizer):
    """sentencepiece pieces; table id = sentencepiece id + 1 (the blank comes first)."""

    unit = "bpe"

    def __init__(self, table: TokenTable, model_path: Path):
        import sentencepiece as spm

        super().__init__(table)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        except (OSError, RuntimeError) as e:
            raise SpeechError(f"{model_path}: cannot load the sentencepiece model ({e})") from None
        if [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())] != table.symbols[1:]:
            raise SpeechError(f"{model_path} does not match {TOKENS} beside it; run speech prepare-lang --force")

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.sp.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([i - 1 for i in ids if i != 0])

    def spell(self, word: str) -> list[str]:
        return self.sp.encode(word, out_type=str)

    def files(self, directory: Path) -> list[Path]:
        return super().files(directory) + [directory / BPE_MODEL]


class PhoneTokenizer(Tokenizer):
    """Words -> phones through a lexicon (first pronunciation); phones out."""

    unit = "phone"
    greedy_gives_words = False

    def __init__(self, table: TokenTable, lexicon: dict[str, list[list[str]]]):
        super().__init__(table)
        self.lexicon = lexicon

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        unk = self.table.id(UNK)
        for word in text.split():
            prons = self.lexicon.get(word)
            if prons:
                ids.extend(self.table.id(p) for p in prons[0])
            else:
                ids.append(unk)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.table.symbols[i] for i in ids if i != 0)

    def files(self, directory: Path) -> list[Path]:
        return super().files(directory) + [directory / LEXICON]


def read_lexicon(path: str | os.PathLike, symbols: Iterable[str] | None = None) -> dict[str, list[list[str]]]:
    """Kaldi lexicon.txt -> word -> pronunciations in file order. With ``symbols`` (a model's
    tokens), a spelling that uses any other symbol is a SpeechError naming its line."""
    path = Path(path)
    known = None if symbols is None else set(symbols)
    lexicon: dict[str, list[list[str]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SpeechError(f"{path}: cannot read the lexicon ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise SpeechError(f"{path}: not UTF-8 text (byte {e.start}); write the lexicon in UTF-8") from None
    for lineno, line in enumerate(lines, 1):
        word, *spelling = line.split() or [""]
        if not spelling:
            raise SpeechError(f"{path}:{lineno}: expected '<word> <token> ...', got {line!r}")
        unknown = [] if known is None else [t for t in spelling if t not in known]
        if unknown:
            raise SpeechError(f"{path}:{lineno}: '{line}' needs a spelling in tokens of the model "
                              f"(unknown: {' '.join(unknown)}); the symbols the model has are in its tokens.txt")
        lexicon.setdefault(word, []).append(spelling)
    if not lexicon:
        raise SpeechError(f"{path}: the lexicon is empty; write '<word> <token> ...' lines")
    return lexicon


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer:
    """The tokenizer stored in a language or model directory."""
    directory = Path(directory)
    table = TokenTable.from_file(directory / TOKENS)
    unit = load_config(TokenizerConfig, directory / CONFIG).unit if (directory / CONFIG).is_file() else "char"
    if unit == "char":
        return CharTokenizer(table)
    if unit == "bpe":
        return BpeTokenizer(table, directory / BPE_MODEL)
    if unit == "phone":
        return PhoneTokenizer(table, read_lexicon(directory / LEXICON))
    raise SpeechError(f"{directory / CONFIG}: unit '{unit}' is not one of {', '.join(UNITS)}")
