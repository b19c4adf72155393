"""English sentences for the voices corpus, from public-domain text installed by Debian.

Sources (tools/install_system_packages.sh installs them):

- ``harvard``: the 720 Harvard sentences (IEEE 1969), phonetically balanced (r-cran-stringr);
- ``austen``: *Emma*, *Pride and Prejudice*, *Mansfield Park*, *Northanger Abbey* and
  *Persuasion* (r-cran-janeaustenr). *Sense and Sensibility* is left out on purpose: the
  real-speech test set is LibriVox readings of it;
- ``fortunes``: quotations and sayings from the prose files of the fortune database.

:func:`normalize` turns written English into the corpus's transcription convention:
lower case words of letters and inner apostrophes, no punctuation; titles spelled out
("Mr." -> "mister"); a sentence with digits, or letters outside English, is dropped rather
than guessed at, since numbers read aloud have several spellings.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator

from speech.errors import SpeechError
from speech.text.rdata import read_package_data

AUSTEN_NOVELS = ("emma", "prideprejudice", "mansfieldpark", "northangerabbey", "persuasion")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
# prose collections; technical jargon (computers, linux, perl, ...), dictionary-style
# definitions and ASCII art read badly aloud
FORTUNE_FILES = ("fortunes", "literature", "wisdom", "people", "platitudes", "humorists", "love", "men-women",
                 "miscellaneous", "education", "food", "pets", "politics", "science", "work", "law", "medicine",
                 "magic", "sports", "kids", "news", "paradoxum", "riddles", "songs-poems", "tao", "art")
MIN_WORDS, MAX_WORDS = 4, 20

_TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}
_TITLE_DOT = re.compile(r"\b(Mr|Mrs|Dr|St)\.", re.IGNORECASE)
# a sentence ends at . ! or ? (and any closing quotes/brackets) followed by space
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _ascii(text: str) -> str:
    """Accents dropped ("café" -> "cafe"), other non-ASCII characters removed."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def normalize(sentence: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> str | None:
    """``sentence`` as lower-case words, or None when it cannot be read unambiguously
    (digits, non-English letters) or has not ``min_words``..``max_words`` words."""
    s = _TITLE_DOT.sub(lambda m: _TITLES[m.group(1).lower()], sentence)
    s = s.replace("\u2019", "'").replace("&", " and ")
    if any(ch.isalpha() and not _ascii(ch) for ch in s):  # Greek, Cyrillic, ...: no English reading
        return None
    s = _ascii(s).lower()
    if re.search(r"[0-9@#$%]", s):
        return None
    s = re.sub(r"[-_/]", " ", s)  # hyphenated words and _emphasis_ markers
    words = _WORD.findall(s)
    if not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (abbreviated titles are expanded first, so "Mr. Knightley"
    does not end a sentence)."""
    text = _TITLE_DOT.sub(lambda m: _TITLES[m.group(1).lower()], " ".join(paragraph.split()))
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Blank-line separated paragraphs of a text given as lines."""
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.strip())
        elif block:
            yield " ".join(block)
            block = []
    if block:
        yield " ".join(block)


def harvard() -> list[str]:
    return list(read_package_data("stringr", "sentences"))


def austen() -> list[str]:
    return [s for novel in AUSTEN_NOVELS for p in paragraphs(read_package_data("janeaustenr", novel))
            for s in split_sentences(p)]


def fortunes(directory: Path = FORTUNE_DIR) -> list[str]:
    """Sentences of the fortune cookies in FORTUNE_FILES (cookies end with a '%' line;
    attribution lines "-- Author" are dropped)."""
    out = []
    for name in FORTUNE_FILES:
        path = directory / name
        if not path.is_file():
            raise SpeechError(f"{path}: missing; install the Debian packages fortunes and fortunes-min "
                              "(tools/install_system_packages.sh)")
        for cookie in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [ln for ln in cookie.splitlines() if not ln.strip().startswith("--")]
            out += [s for p in paragraphs(lines) for s in split_sentences(p)]
    return out


SOURCES = {"harvard": harvard, "austen": austen, "fortunes": fortunes}


def sentence_pool(sources: Iterable[str] = SOURCES) -> dict[str, str]:
    """Normalised sentence -> the source it came from first, in source order, each once."""
    pool: dict[str, str] = {}
    for name in sources:
        for raw in SOURCES[name]():
            s = normalize(raw)
            if s is not None:
                pool.setdefault(s, name)
    return pool
