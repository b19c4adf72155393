"""The language directory of a character CTC system: tokens.txt, lexicon.txt and words.txt.

``speech prepare-lang TEXT LANG_DIR`` reads a Kaldi text file (``<utt> words...``, usually
data/train/text) and writes

- LANG_DIR/tokens.txt: the character table of the transcripts (``<blank>`` 0, ``<unk>`` 1,
  ``<space>`` 2, then the characters in byte order; see :mod:`speech.text.tokens`);
- LANG_DIR/words.txt: the word symbol table as Kaldi's ``utils/prepare_lang.sh`` writes it:
  ``<eps> 0``, then every word of the transcripts plus the OOV word ``<unk>`` in
  ``LC_ALL=C sort`` order numbered from 1, then the disambiguation symbol ``#0`` and the
  sentence boundaries ``<s>`` and ``</s>`` (Kaldi adds these last so that ``arpa2fst
  --read-symbol-table=words.txt`` finds them; being after ``#0`` they never shift a word id);
- LANG_DIR/lexicon.txt: Kaldi's ``word token token ...``, each word spelled in characters,
  for lexicon-constrained decoding.

All are written atomically; the stage is skipped when all are newer than TEXT.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterable

from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key
from speech.text.tokens import UNK, TokenTable, build_char_table

EPS = "<eps>"
DISAMBIG = "#0"
BOS, EOS = "<s>", "</s>"
# Symbols that words.txt reserves; a transcript using them as words would break the lexicon/LM.
_RESERVED = {EPS, BOS, EOS}
_DISAMBIG_RE = re.compile(r"#\d+")


def read_transcripts(path: str | Path) -> dict[str, str]:
    """Read a Kaldi text file: utterance id -> transcript (words joined by one space).

    An utterance id alone on its line is an empty transcript. Raises SpeechError naming
    ``path:line`` for a line that is not UTF-8, an empty line, a repeated utterance id, or a
    word that words.txt reserves.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechError(f"{path}: no such file; pass the text file of the training data (e.g. data/train/text)")
    texts: dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError:
                raise SpeechError(f"{where}: not UTF-8 text; convert the file to UTF-8 (e.g. with iconv)") from None
            if not fields:
                raise SpeechError(f"{where}: empty line; every line must be '<utterance-id> <words...>'")
            utt, words = fields[0], fields[1:]
            if utt in texts:
                raise SpeechError(f"{where}: utterance '{utt}' appears twice; keep one line per utterance")
            for word in words:
                if word in _RESERVED or _DISAMBIG_RE.fullmatch(word):
                    raise SpeechError(f"{where}: '{word}' is a reserved symbol of words.txt; remove it from the transcript")
            texts[utt] = " ".join(words)
    if not texts:
        raise SpeechError(f"{path}: no transcripts; the text file is empty")
    return texts


def word_symbols(transcripts: Iterable[str]) -> list[str]:
    """words.txt symbols in id order: <eps>, sorted words with <unk>, #0, <s>, </s>."""
    words = {word for text in transcripts for word in text.split()} | {UNK}
    return [EPS, *sorted(words, key=kaldi_sort_key), DISAMBIG, BOS, EOS]


def write_symbol_table(path: str | Path, symbols: list[str]) -> None:
    """``<sym> <id>`` lines, ids counted from 0, atomically."""
    with atomic_write(path) as f:
        f.writelines(f"{sym} {i}\n" for i, sym in enumerate(symbols))


def write_lexicon(path: str | Path, words: list[str]) -> None:
    """Kaldi lexicon of a character system: ``word c h a r s`` per line, atomically."""
    with atomic_write(path) as f:
        f.writelines(f"{w} {' '.join(w)}\n" for w in words)


def prepare_lang(text: str | Path, lang_dir: str | Path, force: bool = False) -> bool:
    """Write LANG_DIR/tokens.txt, lexicon.txt and words.txt from TEXT.

    Returns False (and writes nothing) when both files exist, are newer than TEXT and
    ``force`` is not set.
    """
    text, lang_dir = Path(text), Path(lang_dir)
    outputs = [lang_dir / "tokens.txt", lang_dir / "lexicon.txt", lang_dir / "words.txt"]
    if not force and text.is_file() and all(
        p.is_file() and p.stat().st_mtime_ns > text.stat().st_mtime_ns for p in outputs
    ):
        return False
    transcripts = list(read_transcripts(text).values())
    build_char_table(transcripts).write(outputs[0])
    words = word_symbols(transcripts)
    write_lexicon(outputs[1], [w for w in words if w not in _RESERVED and w not in (UNK, DISAMBIG)])
    # words.txt last: an interrupted run leaves it missing or stale, so the next run redoes all.
    write_symbol_table(outputs[2], words)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech prepare-lang",
        description="Write LANG_DIR/tokens.txt (characters, <blank>=0) and LANG_DIR/words.txt "
        "(Kaldi word symbol table) from the transcripts of a Kaldi text file.",
    )
    parser.add_argument("text", help="Kaldi text file with the training transcripts (e.g. data/train/text)")
    parser.add_argument("lang_dir", help="output directory (e.g. data/lang_char)")
    parser.add_argument("--force", action="store_true", help="rewrite the files even if they are up to date")
    args = parser.parse_args(argv)

    lang_dir = Path(args.lang_dir)
    if not prepare_lang(args.text, lang_dir, args.force):
        print(f"{lang_dir}: tokens.txt, lexicon.txt and words.txt are up to date with {args.text}; "
              "skipping (--force to redo)")
        return 0
    num_tokens = len(TokenTable.from_file(lang_dir / "tokens.txt"))
    num_words = (lang_dir / "words.txt").read_text(encoding="utf-8").count("\n")
    print(f"{lang_dir}: wrote tokens.txt ({num_tokens} tokens), lexicon.txt and words.txt ({num_words} symbols)")
    return 0
