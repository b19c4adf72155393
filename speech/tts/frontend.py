"""The TTS text frontend: written English -> the words, phones and pauses an acoustic model is given.

``speech tts-frontend "Dr. Smith paid $3.50 at 7:05 pm." [more text ...] [--file F]`` prints,
for each sentence, the normalised words with their break marks and the model's tokens::

    doctor smith paid three dollars fifty cents at seven oh five p m.
    SIL D AA1 K T ER0 S M IH1 TH P EY1 D ... P IY1 EH1 M . SIL

The text goes through four steps, each a table or a small function:

1. **Plain text.** Typographic characters become their ASCII equivalents (curly quotes,
   dashes, ellipses), accented letters lose their accents (:func:`speech.text.sentences.ascii_fold`).
   What the frontend cannot read (emoji, Cyrillic, stray symbols) is dropped with one
   warning naming it: a synthesizer should say the rest rather than fail.
2. **Normalisation** into lower-case words (letters and inner apostrophes): numbers,
   ordinals, years, money, percentages, times, dates, abbreviations and acronyms. Number
   words come from ``num2words`` (American reading: no "and" in "one hundred twenty").
   Reading a number depends on its neighbours (a 4-digit number is a year unless a unit
   follows; "St." is "saint" before a name, "street" otherwise), so each token is read
   from its match in the whole text.
   On the TTS corpus it must give exactly the words of its transcripts: for a sentence
   ``s`` of :mod:`speech.text.sentences`, the words of ``spoken(s)`` (what the voice read)
   are those of ``normalize(s)``, or the aligner's words would not be the model's. Hence the
   titles are that module's, and an abbreviation that CMUdict already pronounces in full
   keeps its written word ("etc." -> "etc", said "et cetera"; "Ms." -> "ms", said "miz"),
   as the corpus writes it; and the title forms ("Mr.", "Jr.") expand only capitalised, as
   titles are written, since the corpus keeps a lower-case "mr" that its own rule missed.
   A word in capitals is spelled as letters when CMUdict lacks it or spells it itself
   ("BBC" -> "b b c", "NASA" stays a word), except in a text all in capitals, which shouts.
3. **Pauses.** Punctuation becomes break symbols (:data:`PAUSES`); a run of marks is one
   break, the strongest (``? ! . ,``) winning; marks before the first word are not read.
4. **Pronunciations**: every CMUdict pronunciation with its stress (the first is the
   default), festival's letter-to-sound guess for other words (:mod:`speech.text.g2p`),
   one festival process per call and each guess remembered, since a process costs half a
   second. A letter said by its name takes its stressed reading ("a" -> EY1, not AH0).

:func:`tokens` turns the result into what the model embeds: each phone without its stress
digit (one symbol per phone keeps the table small), with its stress level and its position
in the word as two more inputs, between ``SIL`` at both edges. :data:`TOKEN_SYMBOLS` is
fixed (not read from data), so every model and every data dir share its ids.
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

from num2words import num2words

from speech.errors import SpeechError
from speech.logs import setup_logging
from speech.text.g2p import cmu_dictionary_stressed, cmu_phones, cmu_vowels, festival_g2p_stressed, strip_stress
from speech.text.sentences import TITLES, ascii_fold

log = logging.getLogger("speech.tts.frontend")

# SIL: silence at an utterance's edges (or one an aligner found); ",": minor break (, ; :
# dashes, brackets); ".": major break (. and ellipses); "?" and "!": question, exclamation
PAUSES = ("SIL", ",", ".", "?", "!")
TOKEN_SYMBOLS: tuple[str, ...] = ("<pad>", *PAUSES, *cmu_phones())
STRESS_LEVELS = 4  # 0: not a vowel; 1: unstressed vowel (CMU 0); 2: primary (CMU 1); 3: secondary (CMU 2)
POSITIONS = 5  # 0: a pause; 1: a word's first phone; 2: inside; 3: last; 4: its only phone


@dataclass(frozen=True)
class Word:
    text: str  # normalised, lower case ("twenty")
    pronunciations: tuple[tuple[str, ...], ...]  # CMUdict phones with stress digits; the first is the default


@dataclass(frozen=True)
class Pause:
    symbol: str  # one of PAUSES

    def __post_init__(self):
        if self.symbol not in PAUSES:
            raise ValueError(f"pause '{self.symbol}' is not one of {PAUSES}")


class Token(NamedTuple):
    phone: str  # one of PAUSES, or a CMUdict phone without stress ("AH")
    stress: int  # see STRESS_LEVELS
    position: int  # see POSITIONS


class _Term(NamedTuple):
    """A normalised word before its pronunciation is looked up."""

    text: str
    spelled: bool = False  # a letter said by its name


class Abbreviation(NamedTuple):
    words: str
    may_end: bool  # its dot can be a sentence's full stop too ("... and so on, etc.")


# Keys in lower case match in any case ("E.g.", "VS."); capitalised ones (titles) only as
# written or in capitals.
ABBREVIATIONS = {
    "Mr.": Abbreviation(TITLES["mr"], False), "Mrs.": Abbreviation(TITLES["mrs"], False),
    "Dr.": Abbreviation(TITLES["dr"], False), "Ms.": Abbreviation("ms", False),
    "Prof.": Abbreviation("professor", False), "Mt.": Abbreviation("mount", False),
    "Jr.": Abbreviation("junior", True), "Sr.": Abbreviation("senior", True),
    "vs.": Abbreviation("versus", False), "e.g.": Abbreviation("for example", False),
    "i.e.": Abbreviation("that is", False), "approx.": Abbreviation("approximately", False),
    "etc.": Abbreviation("etc", True),
}
# "St." before a capitalised name, and otherwise
SAINT_OR_STREET = (TITLES["st"], "street")
# read so only before a number ("No. 5"); elsewhere "no." is a word and a full stop
BEFORE_NUMBER = {"no.": "number", "nos.": "numbers", "p.": "page", "pp.": "pages", "vol.": "volume",
                 "ch.": "chapter", "fig.": "figure", "#": "number"}
MONTHS = {name.lower(): name.lower() for name in ("January", "February", "March", "April", "May", "June", "July",
                                                  "August", "September", "October", "November", "December")}
MONTHS |= {"jan": "january", "feb": "february", "mar": "march", "apr": "april", "jun": "june", "jul": "july",
           "aug": "august", "sep": "september", "sept": "september", "oct": "october", "nov": "november",
           "dec": "december"}


class Currency(NamedTuple):
    one: str
    many: str
    cent: str  # "" where amounts have no hundredth part
    cents: str


CURRENCIES = {"$": Currency("dollar", "dollars", "cent", "cents"), "£": Currency("pound", "pounds", "penny", "pence"),
              "€": Currency("euro", "euros", "cent", "cents"), "¥": Currency("yen", "yen", "", "")}
SCALES = ("thousand", "million", "billion", "trillion")
SYMBOLS = {"&": "and", "@": "at", "%": "percent", "+": "plus", "=": "equals"}
# a number these follow counts things: "1500 people" is not a year
UNITS = ("people", "persons", "men", "women", "children", "times", "years", "months", "weeks", "days", "hours",
         "minutes", "seconds", "miles", "kilometers", "kilometres", "km", "meters", "metres", "m", "cm", "mm",
         "feet", "ft", "inches", "yards", "pounds", "lb", "lbs", "kg", "grams", "g", "tons", "tonnes", "litres",
         "liters", "dollars", "euros", "cents", "words", "pages", "copies", "votes", "units", "calories", "degrees")
_YEAR_CUE = re.compile(r"\b(?:since|until|till|circa|year)\s+$", re.IGNORECASE)
MARKS = {",": ",", ";": ",", ":": ",", "-": ",", "(": ",", ")": ",", "[": ",", "]": ",", "{": ",", "}": ",",
         ".": ".", "!": "!", "?": "?"}
_STRENGTH = {",": 0, ".": 1, "!": 2, "?": 3}  # of a run of marks, the strongest is the break
# formatting, not speech: quotes, *emphasis*, _emphasis_, and the slash of "and/or"
_SILENT = "\"'*_~`/"
# typographic characters -> ASCII the tokenizer reads
_PLAIN = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "\u2014": " -- ", "\u2015": " -- ",
          "\u2026": "...", "\u2212": "-", "\u00d7": " times ", "\u00df": "ss", "\u00e6": "ae", "\u00c6": "Ae",
          "\u0153": "oe", "\u0152": "Oe", "\u00f8": "o", "\u00d8": "O"}
_PLAIN_BY_CATEGORY = {"Zs": " ", "Pd": "-", "Pi": '"', "Pf": '"', "Ps": "(", "Pe": ")"}

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_AMPM = r"[AaPp](?:\.[Mm]\.|[Mm])(?![A-Za-z])"
_MONTH = "|".join(sorted((m.capitalize() for m in MONTHS), key=len, reverse=True))
# a month's dot is its own only after an abbreviation ("5 Jan. 2020", but "on 5 May. Then")
_MONTH_DOT = "|".join(sorted((m.capitalize() for m, name in MONTHS.items() if m != name), key=len, reverse=True))
_ORDINAL_SUFFIX = r"(?:st|nd|rd|th)"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])"
_TOKEN = re.compile("|".join(rf"(?P<{kind}>{pattern})" for kind, pattern in (
    ("time", rf"\b\d{{1,2}}:\d{{2}}(?!\d)(?:\s*{_AMPM})?|\b\d{{1,2}}\s*{_AMPM}"),
    ("month_day", rf"\b(?:{_MONTH})\.?\s+{_DAY}{_ORDINAL_SUFFIX}?(?![\d:]|,\d|[A-Za-z])"),
    ("day_month", rf"\b{_DAY}{_ORDINAL_SUFFIX}?\s+(?:of\s+)?(?:(?:{_MONTH_DOT})\.|(?:{_MONTH})\b)"),
    ("money", rf"[{''.join(CURRENCIES)}]\s?(?:{_NUMBER}|\.\d+)(?:\s+(?:{'|'.join(SCALES)})\b)?"),
    ("decade", r"'\d0s\b|\b\d{1,3}0s\b"),
    ("ordinal", rf"\b(?:\d{{1,3}}(?:,\d{{3}})+|\d+){_ORDINAL_SUFFIX}\b"),
    ("number", rf"(?:(?<![\w-])-)?{_NUMBER}|(?<![\w.])\.\d+"),
    ("range", r"(?<=\d)-(?=\d)"),
    ("initialism", r"\b(?:[A-Za-z]\.){2,}(?![A-Za-z])"),
    ("word", r"[A-Za-z]+(?:'[A-Za-z]+)*\.?"),
    ("join", r"(?<=\w)-(?=\w)"),  # a hyphenated word: its parts are read as words
    ("mark", r"\.{2,}|-+|[,;:.!?()\[\]{}]"),
    ("symbol", rf"#(?=\d)|[{re.escape(''.join(SYMBOLS))}]"),
    ("silent", rf"\s+|[{re.escape(_SILENT)}]"),
    ("other", r"."),
)))
# a capital and its dot, an initial ("J. Smith"); not "I", which ends "... so do I."
_INITIAL = re.compile(r"[A-HJ-Z]\.")
_NEXT_CAPITAL = re.compile(r"\s+[\"'(]*[A-Z]")
_NEXT_NUMBER = re.compile(r"\s*\d")
_NEXT_UNIT = re.compile(rf"\s*(?:%|(?:{'|'.join(UNITS)})\b)", re.IGNORECASE)
_TEXT_END = re.compile(rf"[\s{re.escape(_SILENT)})\]}}]*$")


# -- numbers ---------------------------------------------------------------------------------


def _words(spelled: str) -> list[str]:
    """num2words' text as words: no hyphens or commas, no "and"."""
    return [w for w in re.split(r"[\s,-]+", spelled) if w and w != "and"]


def _cardinal(n: int) -> list[str]:
    return _words(num2words(n))


def _digits(digits: str) -> list[str]:
    return [_cardinal(int(d))[0] for d in digits]


def _number(text: str) -> list[str]:
    """"-1,234.05" -> minus one thousand two hundred thirty four point zero five; a number
    with a leading zero ("007") or too long to be a quantity is read digit by digit."""
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").replace(",", "").partition(".")
    words = ["minus"] if negative else []
    if len(whole) > 15 or (len(whole) > 1 and whole.startswith("0")):
        words += _digits(whole)
    elif whole:
        words += _cardinal(int(whole))
    return words + (["point", *_digits(fraction)] if fraction else [])


def _plural(words: list[str]) -> list[str]:
    """"nineteen ninety" -> "nineteen nineties" (decades)."""
    last = words[-1]
    return words[:-1] + [last[:-1] + "ies" if last.endswith("y") else last + "s"]


def _is_year(m: re.Match) -> bool:
    """A plain 4-digit number is a year unless a unit follows: 1100-2099 anywhere, any
    other after a cue ("since 1066")."""
    text = m.group()
    if not re.fullmatch(r"\d{4}", text) or _NEXT_UNIT.match(m.string, m.end()):
        return False
    return 1100 <= int(text) <= 2099 or bool(_YEAR_CUE.search(m.string, max(0, m.start() - 20), m.start()))


def _money(m: re.Match) -> list[_Term]:
    """"$3.50" -> three dollars fifty cents; "$2 million" -> two million dollars."""
    currency = CURRENCIES[m.group()[0]]
    amount, *scale = m.group()[1:].split()
    whole, _, cents = amount.replace(",", "").partition(".")
    if scale or len(cents) > 2 or (cents and not currency.cents):
        words = _number(amount) + scale + [currency.many]
    else:
        units, hundredths = int(whole or 0), int(cents.ljust(2, "0")) if cents else 0
        words = []
        if units or not hundredths:
            words += _cardinal(units) + [currency.one if units == 1 else currency.many]
        if hundredths:
            words += _cardinal(hundredths) + [currency.cent if hundredths == 1 else currency.cents]
    return [_Term(w) for w in words]


# -- readers of each kind of token: a match in the whole text -> terms and pauses -----------


def _time(m: re.Match) -> list[_Term | Pause]:
    """"7:05" -> seven oh five; "12:00" -> twelve o'clock; "3:30 pm" -> three thirty p m."""
    hour, minute, ampm = re.fullmatch(r"(\d+)(?::(\d\d))?\s*([AaPp]?)\.?[Mm]?\.?", m.group()).groups()
    words = [_Term(w) for w in _cardinal(int(hour))]
    if minute == "00":
        words += [] if ampm else [_Term("o'clock")]
    elif minute:
        words += [_Term(w) for w in (["oh"] if minute[0] == "0" else []) + _cardinal(int(minute))]
    if ampm:
        words += [_Term(ampm.lower(), spelled=True), _Term("m", spelled=True)]
    return words + _final_stop(m)


def _month_day(m: re.Match) -> list[_Term | Pause]:
    """"Jan. 5" -> january fifth."""
    month, day = re.fullmatch(r"([A-Za-z]+)\.?\s+(\d+)\w*", m.group()).groups()
    return [_Term(MONTHS[month.lower()])] + [_Term(w) for w in _words(num2words(int(day), to="ordinal"))]


def _day_month(m: re.Match) -> list[_Term | Pause]:
    """"5 May" and "5th of May" -> fifth of may."""
    day, month = re.fullmatch(r"(\d+)\w*\s+(?:of\s+)?([A-Za-z]+)\.?", m.group()).groups()
    return ([_Term(w) for w in _words(num2words(int(day), to="ordinal"))] + [_Term("of"), _Term(MONTHS[month.lower()])]
            + _final_stop(m))


def _decade(m: re.Match) -> list[_Term | Pause]:
    """"1990s" -> nineteen nineties; "'80s" -> eighties."""
    n = int(m.group().strip("'s"))
    return [_Term(w) for w in _plural(_words(num2words(n, to="year")) if n >= 1000 else _cardinal(n))]


def _ordinal(m: re.Match) -> list[_Term | Pause]:
    return [_Term(w) for w in _words(num2words(int(m.group()[:-2].replace(",", "")), to="ordinal"))]


def _number_token(m: re.Match) -> list[_Term | Pause]:
    words = _words(num2words(int(m.group()), to="year")) if _is_year(m) else _number(m.group())
    return [_Term(w) for w in words]


def _initialism(m: re.Match) -> list[_Term | Pause]:
    """"U.S.A." -> u s a (letters); "e.g." -> for example."""
    found = _abbreviation(m.group())
    if found is not None:
        return [_Term(w) for w in found.words.split()] + (_final_stop(m) if found.may_end else [])
    return [_Term(c.lower(), spelled=True) for c in m.group() if c.isalpha()] + _final_stop(m)


def _word(m: re.Match) -> list[_Term | Pause]:
    token = m.group()
    word = token.rstrip(".")
    if token.endswith("."):
        if token.lower() in BEFORE_NUMBER and _NEXT_NUMBER.match(m.string, m.end()):
            return [_Term(w) for w in BEFORE_NUMBER[token.lower()].split()]
        if token == "St.":
            saint = _NEXT_CAPITAL.match(m.string, m.end()) is not None
            return [_Term(SAINT_OR_STREET[0])] if saint else [_Term(SAINT_OR_STREET[1])] + _final_stop(m)
        found = _abbreviation(token)
        if found is not None:
            return [_Term(w) for w in found.words.split()] + (_final_stop(m) if found.may_end else [])
        if _INITIAL.fullmatch(token) and _NEXT_CAPITAL.match(m.string, m.end()):  # "J. Smith"
            return [_Term(word.lower(), spelled=True)]
    if word.isupper() and word.isalpha() and len(word) > 1 and not _shouting(m.string) \
            and _reads_as_letters(word.lower()):
        terms = [_Term(c, spelled=True) for c in word.lower()]
    else:
        terms = [_Term(word.lower())]
    return terms + ([Pause(".")] if token.endswith(".") else [])


def _abbreviation(token: str) -> Abbreviation | None:
    found = ABBREVIATIONS.get(token) or ABBREVIATIONS.get(token.lower())
    if found is None and token.isupper():
        found = ABBREVIATIONS.get(token.capitalize())
    return found


def _final_stop(m: re.Match) -> list[Pause]:
    """A full stop for a token whose own dot ends the text ("... in the U.S.")."""
    return [Pause(".")] if m.group().endswith(".") and _TEXT_END.match(m.string, m.end()) else []


@functools.lru_cache(maxsize=16)
def _shouting(text: str) -> bool:
    """Several words and all in capitals: capitals that say nothing about acronyms."""
    return not any(c.islower() for c in text) and len(re.findall(r"[A-Z]+", text)) > 1


def _reads_as_letters(word: str) -> bool:
    """True for an acronym: not in CMUdict, or spelled by it ("bbc": B IY B IY S IY)."""
    cmu = cmu_dictionary_stressed()
    if word not in cmu:
        return True
    letters = [p for c in word for p in strip_stress(_letter_name(cmu[c]))]
    return any(strip_stress(pron) == letters for pron in cmu[word])


def _letter_name(prons: list[list[str]]) -> list[str]:
    """A letter said by its name is stressed: "a" is EY1, not the article's AH0."""
    return next((p for p in prons if any(ph.endswith("1") for ph in p)), prons[0])


_READERS: dict[str, Callable[[re.Match], list[_Term | Pause]]] = {
    "time": _time, "month_day": _month_day, "day_month": _day_month, "money": _money, "decade": _decade,
    "ordinal": _ordinal, "number": _number_token, "range": lambda m: [_Term("to")], "initialism": _initialism,
    "word": _word, "join": lambda m: [], "mark": lambda m: [Pause(MARKS[m.group()[0]])],
    "symbol": lambda m: [_Term(w) for w in (BEFORE_NUMBER.get(m.group()) or SYMBOLS[m.group()]).split()],
    "silent": lambda m: [],
}


# -- text -> terms and pauses -------------------------------------------------------------------


def _plain_char(ch: str) -> str:
    if ch.isascii() or ch in CURRENCIES:
        return ch
    if ch in _PLAIN:
        return _PLAIN[ch]
    if ch.isalpha():
        folded = ascii_fold(ch)
        return folded if folded.isalpha() else ch  # a letter English has no reading for stays, to be dropped
    return _PLAIN_BY_CATEGORY.get(unicodedata.category(ch), ch)


def _breaks(items: Iterable[_Term | Pause]) -> list[_Term | Pause]:
    """Runs of pauses merged into their strongest; none before the first word."""
    out: list[_Term | Pause] = []
    for item in items:
        if isinstance(item, _Term):
            out.append(item)
        elif out and isinstance(out[-1], Pause):
            if _STRENGTH[item.symbol] > _STRENGTH[out[-1].symbol]:
                out[-1] = item
        elif out:
            out.append(item)
    return out


def _terms(text: str) -> list[_Term | Pause]:
    plain = "".join(map(_plain_char, unicodedata.normalize("NFC", text)))
    items: list[_Term | Pause] = []
    dropped: list[str] = []
    for m in _TOKEN.finditer(plain):
        if m.lastgroup != "other":
            items += _READERS[m.lastgroup](m)
        elif m.group() not in dropped:
            dropped.append(m.group())
    if dropped:
        log.warning("dropped characters the frontend cannot read: %s", " ".join(map(repr, dropped)))
    items = _breaks(items)
    if not items:
        shown = " ".join(text.split())
        if not shown:
            raise SpeechError("nothing to pronounce: the text is empty")
        raise SpeechError(f"nothing to pronounce in '{shown[:60]}{'...' if len(shown) > 60 else ''}': "
                          "give English words or numbers")
    return items


def normalize(text: str) -> list[str | Pause]:
    """The words (lower case) and breaks of ``text``, without pronunciations; SpeechError
    when it has nothing to pronounce."""
    return [item.text if isinstance(item, _Term) else item for item in _terms(text)]


# -- pronunciations -------------------------------------------------------------------------------

# festival's letter-to-sound guesses, by word: each word is guessed once in a process
_GUESSED: dict[str, tuple[str, ...]] = {}


def _pronunciations(term: _Term) -> tuple[tuple[str, ...], ...]:
    prons = cmu_dictionary_stressed().get(term.text)
    if prons is None:
        return (_GUESSED[term.text],)
    if term.spelled:
        first = _letter_name(prons)
        prons = [first] + [p for p in prons if p != first]
    return tuple(map(tuple, prons))


def analyse_many(texts: Iterable[str]) -> list[list[Word | Pause]]:
    """:func:`analyse` of each text, with one festival process for all their new words."""
    all_terms = [_terms(text) for text in texts]
    cmu = cmu_dictionary_stressed()
    new = {t.text for terms in all_terms for t in terms if isinstance(t, _Term) and t.text not in cmu} - _GUESSED.keys()
    if new:
        _GUESSED.update((w, tuple(p)) for w, p in festival_g2p_stressed(new).items())
    return [[Word(t.text, _pronunciations(t)) if isinstance(t, _Term) else t for t in terms] for terms in all_terms]


def analyse(text: str) -> list[Word | Pause]:
    """Words with their pronunciations, and breaks: no SIL at the edges, a final break kept
    (the "." or "?" that ends ``text``). SpeechError when there is nothing to pronounce."""
    return analyse_many([text])[0]


# -- sentences ------------------------------------------------------------------------------------

# a candidate end of sentence: . ! ? (closing quotes, brackets) then space and a capital or digit
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9])")
_LAST_WORD = re.compile(r"(?:^|\s)[\"'(\[]*(\S+)$")


def _ends_sentence(text: str, m: re.Match) -> bool:
    """False after a dot that belongs to a title, an initial or a number's abbreviation."""
    if re.match(r"[.!?]+", m.group()).group() != ".":
        return True
    token = _LAST_WORD.search(text, 0, m.start() + 1).group(1)
    found = _abbreviation(token)
    after = text[m.end():]
    return not (token == "St." or (found is not None and not found.may_end)
                or _INITIAL.fullmatch(token) or re.fullmatch(r"(?:[A-Za-z]\.){2,}", token)
                or (token.lower() in BEFORE_NUMBER and after[:1].isdigit())
                or (token.rstrip(".").lower() in MONTHS and after[:1].isdigit()))


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (blank lines end one too), for synthesis one at a time."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for m in _SENTENCE_END.finditer(paragraph):
            if _ends_sentence(paragraph, m):
                out.append(paragraph[start:m.end()].strip())
                start = m.end()
        out.append(paragraph[start:])
    return [s for s in out if s]


# -- tokens -----------------------------------------------------------------------------------------

_SIL = Token("SIL", 0, 0)
_IDS = {symbol: i for i, symbol in enumerate(TOKEN_SYMBOLS)}


def _word_tokens(pron: Sequence[str]) -> list[Token]:
    """One word's phones as tokens; a stressless vowel ("AH") counts as unstressed."""
    if not pron:
        raise ValueError("an empty pronunciation")
    out = []
    for j, p in enumerate(pron):
        phone = p.rstrip("012")
        digit = p[len(phone):]
        vowel = phone in cmu_vowels()
        if phone not in _IDS or phone in PAUSES or len(digit) > 1 or (digit and not vowel):
            raise ValueError(f"'{p}' is not a CMUdict phone (with a stress digit on a vowel)")
        stress = int(digit) + 1 if digit else int(vowel)
        position = 4 if len(pron) == 1 else 1 if j == 0 else 3 if j == len(pron) - 1 else 2
        out.append(Token(phone, stress, position))
    return out


def tokens(items: Sequence[Word | Pause],
           choose: Callable[[int, Word], tuple[str, ...]] | None = None) -> list[Token]:
    """``SIL``, the items' phones and pauses, ``SIL``; ``choose(i, word)`` picks the
    pronunciation of item ``i`` (default: its first)."""
    out = [_SIL]
    for i, item in enumerate(items):
        if isinstance(item, Pause):
            out.append(Token(item.symbol, 0, 0))
        else:
            out += _word_tokens(choose(i, item) if choose else item.pronunciations[0])
    return out + [_SIL]


def token_ids(toks: Sequence[Token]) -> tuple[list[int], list[int], list[int]]:
    """(ids in TOKEN_SYMBOLS, stress levels, positions) of ``toks``."""
    return [_IDS[t.phone] for t in toks], [t.stress for t in toks], [t.position for t in toks]


def format_tokens(toks: Iterable[Token]) -> str:
    """``SIL HH AH0 L OW1 , W ER1 L D . SIL``: the stress digit on vowels."""
    return " ".join(t.phone + str(t.stress - 1) if t.stress else t.phone for t in toks)


def format_words(items: Iterable[Word | Pause]) -> str:
    """``hello, world.``: the words, each break mark after the word before it."""
    out: list[str] = []
    for item in items:
        if isinstance(item, Word):
            out.append(item.text)
        elif out and item.symbol != "SIL":
            out[-1] += item.symbol
    return " ".join(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech tts-frontend", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="text to read (each may hold several sentences)")
    p.add_argument("--file", type=Path, help="read the texts from this file, one a line")
    args = p.parse_args(argv)
    setup_logging(None)  # warnings (dropped characters) to this run's stderr
    texts = list(args.texts)
    if args.file is not None:
        try:
            texts += [line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise SpeechError(f"{args.file}: cannot read it as UTF-8 text ({e})") from None
    if not texts:
        raise SpeechError("no text: give it as arguments or with --file FILE")
    sentences = [s for text in texts for s in split_sentences(text)]
    for items in analyse_many(sentences):
        print(format_words(items))
        print(format_tokens(tokens(items)))
    return 0
