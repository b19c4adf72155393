"""G, the grammar over words: an ARPA n-gram LM converted by kaldilm (Kaldi's arpa2fst),
or without an LM a loop over the lexicon's words; and W, the word-cost loop that puts a
per-word score on a finished graph."""

from __future__ import annotations

import tempfile
from pathlib import Path

import kaldifst

from speech.graph.lexicon import BACKOFF

EPS, BOS, EOS = "<eps>", "<s>", "</s>"
UNWEIGHTED = (BACKOFF, BOS, EOS)  # output labels that are not words: W leaves them free


def words_text(words: dict[int, str]) -> str:
    """A word table as OpenFst reads symbol tables: ``<word> <id>`` lines in id order."""
    return "".join(f"{w} {i}\n" for i, w in sorted(words.items()))


def word_loop(words: list[str], word_id: dict[str, int]) -> kaldifst.StdVectorFst:
    """G without an LM: every word, any number of times, all alike."""
    g = kaldifst.StdVectorFst()
    g.start = g.add_state()
    g.set_final(state=0, weight=0)
    for w in words:
        g.add_arc(state=0, arc=kaldifst.StdArc(ilabel=word_id[w], olabel=word_id[w], weight=0, nextstate=0))
    return g


def arpa_grammar(arpa: Path, word_id: dict[str, int]) -> kaldifst.StdVectorFst:
    """G from an ARPA LM: back-off arcs read #0, the weights are -ln p."""
    import kaldilm

    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "words.txt"
        table.write_text(words_text({i: w for w, i in word_id.items()}), encoding="utf-8")
        return kaldifst.compile(kaldilm.arpa2fst(str(arpa), disambig_symbol=BACKOFF, read_symbol_table=str(table),
                                                 max_arpa_warnings=0))


def word_cost_loop(words: dict[int, str], cost: float) -> kaldifst.StdVectorFst:
    """W: one state looping over every word id with ``cost``; the labels of
    :data:`UNWEIGHTED` cost nothing."""
    w = kaldifst.StdVectorFst()
    w.start = w.add_state()
    w.set_final(state=0, weight=0)
    for i, word in sorted(words.items()):
        if i:
            w.add_arc(state=0, arc=kaldifst.StdArc(ilabel=i, olabel=i, nextstate=0,
                                                   weight=0 if word in UNWEIGHTED else cost))
    return w
