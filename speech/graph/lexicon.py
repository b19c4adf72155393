"""L, the lexicon transducer: spellings in the model's units, the word on the first arc.

Spellings that are prefixes of others or shared by several words get disambiguation
symbols #1, #2, ... (as Kaldi's add_lex_disambig.pl), so that L o G can be determinized;
#0 passes G's back-off arcs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

import kaldifst

BACKOFF = "#0"  # G's back-off label, passed through L by a #0:#0 loop

# (word, its spelling) in lexicon order; a word with several pronunciations has several
Entries = list[tuple[str, list[str]]]


def add_disambig(entries: Entries) -> tuple[Entries, int]:
    """Append #1, #2, ... to spellings that are another's prefix or shared by several
    words; returns the new entries and the highest disambiguation index used."""
    count = Counter(tuple(s) for _, s in entries)
    prefixes = {tuple(s[:i]) for _, s in entries for i in range(1, len(s))}
    used: dict[tuple[str, ...], int] = defaultdict(int)
    out, highest = [], 0
    for word, spelling in entries:
        key = tuple(spelling)
        if count[key] > 1 or key in prefixes:
            used[key] += 1
            highest = max(highest, used[key])
            spelling = [*spelling, f"#{used[key]}"]
        out.append((word, spelling))
    return out, highest


def lexicon_fst(entries: Entries, token_label: dict[str, int], word_id: dict[str, int],
                optional: Iterable[str] = ()) -> kaldifst.StdVectorFst:
    """L: a loop through state 0 spelling each word, the word on its first arc; a #0:#0
    loop, and an ``optional``:eps loop for each symbol that may come any number of times
    between words (the CTC word boundary, as flashlight's silence token; an HMM lexicon's
    silence phone)."""
    lex = kaldifst.StdVectorFst()
    lex.start = lex.add_state()
    lex.set_final(state=0, weight=0)
    for word, spelling in entries:
        state = 0
        for j, symbol in enumerate(spelling):
            nxt = 0 if j == len(spelling) - 1 else lex.add_state()
            lex.add_arc(state=state, arc=kaldifst.StdArc(ilabel=token_label[symbol],
                                                         olabel=word_id[word] if j == 0 else 0, weight=0,
                                                         nextstate=nxt))
            state = nxt
    lex.add_arc(state=0, arc=kaldifst.StdArc(ilabel=token_label[BACKOFF], olabel=word_id[BACKOFF], weight=0,
                                             nextstate=0))
    for symbol in optional:
        lex.add_arc(state=0, arc=kaldifst.StdArc(ilabel=token_label[symbol], olabel=0, weight=0, nextstate=0))
    return lex
