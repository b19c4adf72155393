"""Token tables (ESPnet/Kaldi ``tokens.txt``: ``<sym> <id>``, blank = 0).

Every table starts ``<blank>`` (0, the CTC blank), ``<unk>`` (1). A character table then
has ``<space>`` (word boundary) and the characters of the training text in byte order, so
the same text always gives the same ids; its encoding lives here. Other units (BPE pieces,
phones) are in :mod:`speech.text.tokenizer`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key

BLANK = "<blank>"
UNK = "<unk>"
SPACE = "<space>"


class TokenTable:
    """Maps symbols to ids and back. ``symbols[i]`` is the symbol of id ``i``."""

    def __init__(self, symbols: Sequence[str]):
        if list(symbols[:2]) != [BLANK, UNK]:
            raise SpeechError(f"a token table must start with {BLANK} 0, {UNK} 1")
        if len(set(symbols)) != len(symbols):
            raise SpeechError("a token table has a duplicated symbol")
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def id(self, symbol: str) -> int:
        """The id of ``symbol`` (that of ``<unk>`` when the table lacks it)."""
        return self._ids.get(symbol, 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenTable) and self.symbols == other.symbols

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TokenTable":
        """Read ``<sym> <id>`` lines; ids must be 0..N-1 in order."""
        path = Path(path)
        if not path.is_file():
            raise SpeechError(f"{path}: token table not found")
        symbols = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) != lineno - 1:
                    raise SpeechError(f"{path}:{lineno}: expected '<symbol> {lineno - 1}', got {line.strip()!r}")
                symbols.append(parts[0])
        try:
            return cls(symbols)
        except SpeechError as e:
            raise SpeechError(f"{path}: {e}") from None

    def write(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as f:
            f.writelines(f"{s} {i}\n" for i, s in enumerate(self.symbols))

    def encode(self, text: str) -> list[int]:
        """Words separated by whitespace -> character ids, ``<space>`` between words."""
        unk, space = self._ids[UNK], self._ids[SPACE]
        ids: list[int] = []
        for word in text.split():
            if ids:
                ids.append(space)
            ids.extend(self._ids.get(ch, unk) for ch in word)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; blanks are dropped, ``<space>`` splits words (CTC collapsing is the decoder's job)."""
        out = []
        for i in ids:
            sym = self.symbols[i]
            if sym == BLANK:
                continue
            out.append(" " if sym == SPACE else sym)
        return " ".join("".join(out).split())


def build_char_table(texts: Iterable[str]) -> TokenTable:
    """The table of every character in ``texts`` (transcripts without utterance ids)."""
    chars = {ch for text in texts for ch in text if not ch.isspace()}
    return TokenTable([BLANK, UNK, SPACE, *sorted(chars, key=kaldi_sort_key)])
