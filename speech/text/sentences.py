"""English sentences for synthetic corpora, from public-domain text installed by Debian.

Sources (tools/install_system_packages.sh installs them):

- ``harvard``: the 720 Harvard sentences (IEEE 1969), phonetically balanced (r-cran-stringr);
- ``austen``: *Emma*, *Pride and Prejudice*, *Mansfield Park*, *Northanger Abbey* and
  *Persuasion* (r-cran-janeaustenr). *Sense and Sensibility* is left out on purpose: the
  real-speech test set is LibriVox readings of it;
- ``fortunes``: quotations and sayings from the prose files of the fortune database.

:func:`normalize` turns written English into the corpus's transcription convention:
lower case words of letters and inner apostrophes, no punctuation; titles spelled out
("Mr." -> "mister"); a sentence with digits, or letters outside English, is dropped rather
than guessed at, since numbers read aloud have several spellings. :func:`spoken` gives the
same words with the sentence's punctuation, for a synthesizer whose prosody follows it.
:func:`split_pool` cuts a pool into disjoint, seeded test/dev/train sentence lists.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

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

TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}
_TITLE_DOT = re.compile(r"\b(Mr|Mrs|Dr|St)\.", re.IGNORECASE)
# a sentence ends at . ! or ? (and any closing quotes/brackets) followed by space
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
# a word, or a mark that shapes how a sentence is read aloud (pauses, questions)
_TOKEN = re.compile(rf"{WORD.pattern}|[,;:.!?]")


def ascii_fold(text: str) -> str:
    """Accents dropped ("café" -> "cafe"), other non-ASCII characters removed."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _tokens(sentence: str) -> list[str] | None:
    """Words (lower case) and punctuation marks of ``sentence``, or None when it cannot be
    read unambiguously (digits, non-English letters)."""
    s = _TITLE_DOT.sub(lambda m: TITLES[m.group(1).lower()], sentence)
    s = s.replace("\u2019", "'").replace("&", " and ")
    if any(ch.isalpha() and not ascii_fold(ch) for ch in s):  # Greek, Cyrillic, ...: no English reading
        return None
    s = ascii_fold(s).lower()
    if re.search(r"[0-9@#$%]", s):
        return None
    s = re.sub(r"[-_/]", " ", s)  # hyphenated words and _emphasis_ markers
    # the words are those WORD alone finds: a mark never lies inside a word
    return _TOKEN.findall(s)


def _is_word(token: str) -> bool:
    return token[0].isalpha()


def normalize(sentence: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> str | None:
    """``sentence`` as lower-case words, or None when it cannot be read unambiguously
    (digits, non-English letters) or has not ``min_words``..``max_words`` words."""
    tokens = _tokens(sentence)
    words = [t for t in tokens or () if _is_word(t)]
    if tokens is None or not min_words <= len(words) <= max_words:
        return None
    return " ".join(words)


def spoken(sentence: str) -> str | None:
    """What a synthesizer should read for ``sentence``: exactly the words of
    :func:`normalize` (so the transcript is what is said), each followed by the marks
    ``, ; : . ! ?`` that follow it in the sentence, since pauses and intonation follow them
    ("Mr. Knightley, a man!" -> "mister knightley, a man!"). None where normalize gives None
    for want of a reading; the word-count limits are normalize's to apply."""
    tokens = _tokens(sentence)
    if tokens is None:
        return None
    out: list[str] = []
    for t in tokens:
        if _is_word(t):
            out.append(t)
        elif out:  # a mark before the first word (an ellipsis, a stray quote) is dropped
            out[-1] += t
    return " ".join(out)


# Words of a normalised sentence that a reader may say in several ways: lone letters (the
# "Q:" of riddles, initials) and abbreviations written without their dot.
_AMBIGUOUS = re.compile(r"(?<!\S)(?:[b-hj-z]|mr|mrs|dr|st|etc|vs|viz|ii|iii|iv|vi|vii|viii|ix|xi|xii)(?!\S)")


def reads_unambiguously(sentence: str) -> bool:
    """False for a normalised sentence holding a word whose spoken form is a guess (see
    _AMBIGUOUS): a synthesizer may say "mr" as "mister" or "m r", which its transcript
    cannot tell. About 2 % of the pool."""
    return _AMBIGUOUS.search(sentence) is None


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (abbreviated titles are expanded first, so "Mr. Knightley"
    does not end a sentence)."""
    text = _TITLE_DOT.sub(lambda m: TITLES[m.group(1).lower()], " ".join(paragraph.split()))
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


class PoolSentence(NamedTuple):
    source: str  # the SOURCES name it came from first
    spoken: str  # what a synthesizer reads for it (:func:`spoken` of its first occurrence)


def sentence_pool(sources: Iterable[str] = SOURCES) -> dict[str, PoolSentence]:
    """Normalised sentence -> where it came from first, in source order, each once."""
    pool: dict[str, PoolSentence] = {}
    for name in sources:
        for raw in SOURCES[name]():
            s = normalize(raw)
            if s is not None and s not in pool:
                pool[s] = PoolSentence(name, spoken(raw))
    return pool


def split_pool(pool: Iterable[str], num_eval: int, seed: str) -> dict[str, list[str]]:
    """Disjoint sentence pools: ``num_eval`` each for ``test`` and ``dev``, the rest (at
    least one) for ``train``, shuffled by ``seed`` (any text: the same seed and the same
    sentences, in any order, give the same pools)."""
    shuffled = sorted(set(pool))
    if len(shuffled) < 2 * num_eval + 1:
        raise SpeechError(f"only {len(shuffled)} sentences for {num_eval} dev and {num_eval} test sentences and "
                          "a training set; ask for fewer (lower --hours or the number of dev/test utterances)")
    random.Random(seed).shuffle(shuffled)
    return {"test": shuffled[:num_eval], "dev": shuffled[num_eval:2 * num_eval], "train": shuffled[2 * num_eval:]}
