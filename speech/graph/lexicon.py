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
                optional: Iterable[str] = (), silence: str | None = None,
                silence_prob: float = 0.5) -> kaldifst.StdVectorFst:
    """L: a loop through one state spelling each word, the word on its first arc; a #0:#0
    loop, and an ``optional``:eps loop for each symbol that may come any number of times
    between words (the CTC word boundary, as flashlight's silence token).

    ``silence`` (an HMM lexicon's silence phone) is Kaldi's optional silence instead: at
    most one at the start and after each word, with probability ``silence_prob``
    (utils/make_lexicon_fst.py). Free silence loops would let a silence model absorb the
    ends of words during a flat start; one weighted silence per word boundary does not.
    """
    import math

    lex = kaldifst.StdVectorFst()
    start = lex.add_state()
    lex.start = start
    loop = start if silence is None else lex.add_state()
    lex.set_final(state=loop, weight=0)
    no_sil = sil = after_sil = 0.0
    if silence is not None:
        no_sil, sil = -math.log(1 - silence_prob), -math.log(silence_prob)
        after_sil = lex.add_state()
        lex.add_arc(state=start, arc=kaldifst.StdArc(ilabel=0, olabel=0, weight=no_sil, nextstate=loop))
        lex.add_arc(state=start, arc=kaldifst.StdArc(ilabel=token_label[silence], olabel=0, weight=sil,
                                                     nextstate=loop))
        lex.add_arc(state=after_sil, arc=kaldifst.StdArc(ilabel=token_label[silence], olabel=0, weight=0,
                                                         nextstate=loop))
    for word, spelling in entries:
        state = loop
        for j, symbol in enumerate(spelling):
            olabel = word_id[word] if j == 0 else 0
            if j < len(spelling) - 1:
                nxt = lex.add_state()
                lex.add_arc(state=state, arc=kaldifst.StdArc(ilabel=token_label[symbol], olabel=olabel, weight=0,
                                                             nextstate=nxt))
                state = nxt
                continue
            lex.add_arc(state=state, arc=kaldifst.StdArc(ilabel=token_label[symbol], olabel=olabel, weight=no_sil,
                                                         nextstate=loop))
            if silence is not None:
                lex.add_arc(state=state, arc=kaldifst.StdArc(ilabel=token_label[symbol], olabel=olabel,
                                                             weight=sil, nextstate=after_sil))
    lex.add_arc(state=loop, arc=kaldifst.StdArc(ilabel=token_label[BACKOFF], olabel=word_id[BACKOFF], weight=0,
                                                nextstate=loop))
    for symbol in optional:
        lex.add_arc(state=loop, arc=kaldifst.StdArc(ilabel=token_label[symbol], olabel=0, weight=0, nextstate=loop))
    return lex
