"""The language directory of a CTC system: tokens, tokenizer, lexicon and word list.

``speech prepare-lang TEXT LANG_DIR [--unit char|bpe|phone]`` reads a Kaldi text file
(``<utt> words...``, usually data/train/text) and writes

- LANG_DIR/tokens.txt: ``<blank>`` 0, ``<unk>`` 1, then the unit's symbols: for ``char``
  ``<space>`` and the characters of the transcripts in byte order; for ``bpe`` the pieces
  of a sentencepiece BPE model trained on the transcripts (LANG_DIR/bpe.model,
  ``--bpe-size`` pieces at most); for ``phone`` CMUdict's 39 phones;
- LANG_DIR/tokenizer.yaml: the unit (see :mod:`speech.text.tokenizer`);
- LANG_DIR/words.txt: the word symbol table as Kaldi's ``utils/prepare_lang.sh`` writes it:
  ``<eps> 0``, then every word of the transcripts plus the OOV word ``<unk>`` in
  ``LC_ALL=C sort`` order numbered from 1, then the disambiguation symbol ``#0`` and the
  sentence boundaries ``<s>`` and ``</s>`` (Kaldi adds these last so that ``arpa2fst
  --read-symbol-table=words.txt`` finds them; being after ``#0`` they never shift a word id);
- LANG_DIR/lexicon.txt: Kaldi's ``word token token ...``, each word spelled in the unit's
  tokens, for lexicon-constrained decoding: characters, BPE pieces, or every CMUdict
  pronunciation (words CMUdict lacks are spelled by festival's letter-to-sound rules).

All are written atomically; the stage is skipped when all are newer than TEXT and were
made for the same unit.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from pathlib import Path
from typing import Iterable

from speech.config import load_config, save_config
from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key
from speech.stage import skip
from speech.text.tokenizer import (BPE_MODEL, CONFIG, LEXICON, TOKENS, UNITS, TokenizerConfig,
                                   load_tokenizer)
from speech.text.tokens import BLANK, UNK, TokenTable, build_char_table

log = logging.getLogger("speech.prepare_lang")

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


def write_lexicon(path: str | Path, spellings: Iterable[tuple[str, list[str]]]) -> None:
    """Kaldi lexicon: ``word token token ...`` per (word, spelling), atomically."""
    with atomic_write(path) as f:
        f.writelines(f"{w} {' '.join(spelling)}\n" for w, spelling in spellings)


def train_bpe(transcripts: list[str], size: int, model_path: Path) -> None:
    """A sentencepiece BPE model of at most ``size`` pieces (fewer when the text has fewer)."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "text"
        corpus.write_text("".join(t + "\n" for t in transcripts if t), encoding="utf-8")
        try:
            spm.SentencePieceTrainer.train(
                input=str(corpus), model_prefix=str(Path(tmp) / "bpe"), vocab_size=size, model_type="bpe",
                character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, hard_vocab_limit=False,
                num_threads=1, minloglevel=2)
        except RuntimeError as e:  # e.g. fewer pieces asked for than the text has characters
            reason = str(e).split("] ")[-1]
            raise SpeechError(f"sentencepiece cannot train {size} BPE pieces: {reason}") from None
        with atomic_write(model_path, "wb") as f:
            f.write((Path(tmp) / "bpe.model").read_bytes())


def _unit_files(lang_dir: Path, cfg: TokenizerConfig) -> list[Path]:
    files = [lang_dir / TOKENS, lang_dir / LEXICON, lang_dir / "words.txt", lang_dir / CONFIG]
    return files + ([lang_dir / BPE_MODEL] if cfg.unit == "bpe" else [])


def prepare_lang(text: str | Path, lang_dir: str | Path, force: bool = False, unit: str = "char",
                 bpe_size: int = 300) -> bool:
    """Write LANG_DIR/tokens.txt, tokenizer.yaml, lexicon.txt, words.txt (and bpe.model)
    from TEXT.

    Returns False (and writes nothing) when they exist, are newer than TEXT, were made for
    the same unit and ``force`` is not set.
    """
    if unit not in UNITS:
        raise SpeechError(f"--unit must be one of {', '.join(UNITS)} (got '{unit}')")
    if unit == "bpe" and bpe_size < 2:
        raise SpeechError(f"--bpe-size must be at least 2 (got {bpe_size})")
    text, lang_dir = Path(text), Path(lang_dir)
    cfg = TokenizerConfig(unit=unit, bpe_size=bpe_size if unit == "bpe" else 0)
    # A missing TEXT is not "older than the outputs": read_transcripts below says it is missing.
    if skip("prepare-lang", f"{lang_dir}: tokens.txt, lexicon.txt and words.txt are up to date with {text}",
            _unit_files(lang_dir, cfg), [text],
            lambda: text.is_file() and load_config(TokenizerConfig, lang_dir / CONFIG) == cfg, force):
        return False
    transcripts = list(read_transcripts(text).values())
    words = word_symbols(transcripts)
    lexicon_words = [w for w in words if w not in _RESERVED and w not in (UNK, DISAMBIG)]
    lang_dir.mkdir(parents=True, exist_ok=True)
    (lang_dir / "words.txt").unlink(missing_ok=True)  # written last: its absence marks an unfinished run
    if unit == "char":
        build_char_table(transcripts).write(lang_dir / TOKENS)
        spellings = [(w, list(w)) for w in lexicon_words]
    elif unit == "bpe":
        train_bpe(transcripts, bpe_size, lang_dir / BPE_MODEL)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(lang_dir / BPE_MODEL))
        TokenTable([BLANK] + [sp.id_to_piece(i) for i in range(sp.get_piece_size())]).write(lang_dir / TOKENS)
        spellings = [(w, sp.encode(w, out_type=str)) for w in lexicon_words]
    else:
        from speech.text.g2p import cmu_phones, pronunciations

        TokenTable([BLANK, UNK, *cmu_phones()]).write(lang_dir / TOKENS)
        prons, guessed = pronunciations(lexicon_words)
        if guessed:
            log.info("%d of %d words are not in CMUdict; festival spelled them (e.g. %s)", len(guessed),
                     len(lexicon_words), " ".join(guessed[:5]))
        spellings = [(w, pron) for w in lexicon_words for pron in prons[w]]
    write_lexicon(lang_dir / LEXICON, spellings)
    save_config(cfg, lang_dir / CONFIG)
    # words.txt last: an interrupted run leaves it missing or stale, so the next run redoes all.
    write_symbol_table(lang_dir / "words.txt", words)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech prepare-lang",
        description="Write LANG_DIR/tokens.txt (characters, <blank>=0) and LANG_DIR/words.txt "
        "(Kaldi word symbol table) from the transcripts of a Kaldi text file.",
    )
    parser.add_argument("text", help="Kaldi text file with the training transcripts (e.g. data/train/text)")
    parser.add_argument("lang_dir", help="output directory (e.g. data/lang_char)")
    parser.add_argument("--unit", default="char", choices=UNITS, help="output units (default char)")
    parser.add_argument("--bpe-size", type=int, default=300, help="BPE pieces at most (--unit bpe; default 300)")
    parser.add_argument("--force", action="store_true", help="rewrite the files even if they are up to date")
    args = parser.parse_args(argv)

    lang_dir = Path(args.lang_dir)
    if not prepare_lang(args.text, lang_dir, args.force, args.unit, args.bpe_size):
        return 0
    tokenizer = load_tokenizer(lang_dir)
    num_words = (lang_dir / "words.txt").read_text(encoding="utf-8").count("\n")
    print(f"{lang_dir}: wrote tokens.txt ({len(tokenizer.table)} {args.unit} tokens), lexicon.txt and words.txt "
          f"({num_words} symbols)")
    return 0
