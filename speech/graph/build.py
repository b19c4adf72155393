"""Composition of a decoding graph, the same for every topology: topology o min(det(L o G)),
as Kaldi's mkgraph.sh makes HCLG and EESEN makes TLG; and graphs to and from a directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import kaldifst

from speech.errors import SpeechError
from speech.fileio import atomic_path, atomic_write
from speech.graph.grammar import BOS, EOS, EPS, arpa_grammar, word_cost_loop, word_loop, words_text
from speech.graph.lexicon import BACKOFF, add_disambig, lexicon_fst

GRAPH, WORDS = "TLG.fst", "words.txt"

# (number of tokens, disambiguation labels) -> T or H (see speech.graph.topology)
Topology = Callable[[int, list[int]], kaldifst.StdVectorFst]


def _vector(fst) -> kaldifst.StdVectorFst:
    """kaldifst.compose returns a lazy or constant FST for some inputs; the operations after
    it need a mutable one."""
    return fst if isinstance(fst, kaldifst.StdVectorFst) else kaldifst.StdVectorFst(fst)


@dataclass
class LexiconGrammar:
    """min(det(L o G)) over a model's symbols, before the topology: what every topology
    composes with. Input labels are symbol id + 1, then the disambiguation symbols."""

    fst: kaldifst.StdVectorFst  # arcsorted on input labels
    words: dict[int, str]  # output label -> word (GRAPH_DIR/words.txt)
    disambig: list[int]  # the input labels of #0, #1, ...


def lexicon_grammar(symbols: list[str], lexicon: dict[str, list[list[str]]], arpa: Path | None = None,
                    word_end: str | None = None, optional: Iterable[str] = (),
                    transcript: list[str] | None = None, silence: str | None = None) -> LexiconGrammar:
    """L o G for a model whose outputs are ``symbols`` (id = index).

    lexicon: word -> spellings in ``symbols``; ``word_end`` is appended to every spelling
    (the CTC word boundary, as flashlight's lexicon search ends every word); ``optional``
    symbols may come any number of times between words; ``silence`` is an HMM's optional
    silence phone (see :func:`~speech.graph.lexicon.lexicon_fst`). G is the ARPA LM, else the
    ``transcript`` word sequence alone (a training graph, as Kaldi's compile-train-graphs),
    else a word loop.
    """
    entries = [(w, s) for w, spellings in lexicon.items() for s in spellings]
    unknown = sorted({t for _, s in entries for t in s} - set(symbols))
    if unknown:
        raise SpeechError(f"the lexicon uses symbols the model does not have: {' '.join(unknown[:5])}")
    if word_end is not None:
        entries = [(w, [*s, word_end]) for w, s in entries]
    entries, highest = add_disambig(entries)
    token_label = {s: i + 1 for i, s in enumerate(symbols)}
    disambig = [f"#{k}" for k in range(highest + 1)]
    token_label.update({d: len(symbols) + 1 + k for k, d in enumerate(disambig)})

    words = sorted(lexicon)
    lm_words = [] if arpa is None else [w for w in _arpa_vocab(arpa) if w not in (BOS, EOS)]
    vocabulary = [EPS] + sorted(set(words) | set(lm_words)) + [BACKOFF, BOS, EOS]
    word_id = {w: i for i, w in enumerate(vocabulary)}
    if arpa is not None:
        g = arpa_grammar(arpa, word_id)
    elif transcript is not None:
        missing = [w for w in transcript if w not in lexicon]
        if missing:
            raise SpeechError(f"the word '{missing[0]}' has no pronunciation in the lexicon; add it to the lexicon "
                              "(prepare-lang makes one for every word of the text it reads)")
        g = kaldifst.make_linear_acceptor([word_id[w] for w in transcript])
    else:
        g = word_loop(words, word_id)
    lex = lexicon_fst(entries, token_label, word_id, optional, silence)
    kaldifst.arcsort(lex, sort_type="olabel")
    kaldifst.arcsort(g, sort_type="ilabel")
    lg = _vector(kaldifst.compose(lex, g))
    if kaldifst.determinize_star(lg):  # True means it stopped early (max_states), not success
        raise SpeechError("the lexicon/grammar graph could not be determinized")
    kaldifst.minimize_encoded(lg)
    kaldifst.arcsort(lg, sort_type="ilabel")
    return LexiconGrammar(lg, {i: w for w, i in word_id.items()}, [token_label[d] for d in disambig])


def compose_topology(topology: kaldifst.StdVectorFst, lg: kaldifst.StdVectorFst) -> kaldifst.StdVectorFst:
    """topology o LG, trimmed and arcsorted on input labels; raises when nothing is left."""
    kaldifst.arcsort(topology, sort_type="olabel")
    graph = _vector(kaldifst.compose(topology, lg))
    kaldifst.connect(graph)
    kaldifst.arcsort(graph, sort_type="ilabel")
    if graph.num_states == 0:
        raise SpeechError("the decoding graph is empty: no lexicon word is in the LM's vocabulary")
    return graph


def build_graph(symbols: list[str], lexicon: dict[str, list[list[str]]], topology: Topology,
                arpa: Path | None = None, word_end: str | None = None,
                optional: Iterable[str] = ()) -> tuple[kaldifst.StdVectorFst, dict[int, str]]:
    """(graph, id -> word) for a model whose outputs are ``symbols``: ``topology`` o LG (see
    :func:`lexicon_grammar` for the arguments)."""
    lg = lexicon_grammar(symbols, lexicon, arpa, word_end, optional)
    return compose_topology(topology(len(symbols), lg.disambig), lg.fst), lg.words


def _arpa_vocab(arpa: Path) -> list[str]:
    from speech.lm.ngram import ArpaModel

    return list(ArpaModel.load(arpa).vocab)


def with_word_cost(graph: kaldifst.StdVectorFst, words: dict[int, str], cost: float) -> kaldifst.StdVectorFst:
    """graph o W: ``cost`` on every word arc (:func:`~speech.graph.grammar.word_cost_loop`).
    About 3 s for a 1.4M-state graph, so one graph on disk serves every word score."""
    kaldifst.arcsort(graph, sort_type="olabel")
    out = _vector(kaldifst.compose(graph, word_cost_loop(words, cost)))
    kaldifst.arcsort(out, sort_type="ilabel")
    return out


def write_graph(graph_dir: Path, graph: kaldifst.StdVectorFst, words: dict[int, str], name: str = GRAPH) -> None:
    """GRAPH_DIR/``name`` (TLG.fst; HCLG.fst for a GMM-HMM) and GRAPH_DIR/words.txt, each
    written atomically; words.txt last, so a graph dir with both is whole."""
    with atomic_path(graph_dir / name) as tmp:
        graph.write(str(tmp))
    with atomic_write(graph_dir / WORDS) as f:
        f.write(words_text(words))


def read_graph(graph_dir: Path, name: str = GRAPH,
               maker: str = "speech make-graph") -> tuple[kaldifst.StdVectorFst, dict[int, str]]:
    """(graph, id -> word) of a graph dir written by :func:`write_graph`; ``maker`` is the
    command the errors tell the user to run."""
    graph_dir = Path(graph_dir)
    if not (graph_dir / name).is_file() or not (graph_dir / WORDS).is_file():
        raise SpeechError(f"{graph_dir}: no {name} and {WORDS}; make them with {maker}")
    words = {}
    for lineno, line in enumerate((graph_dir / WORDS).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise SpeechError(f"{graph_dir / WORDS}:{lineno}: expected '<word> <id>', got {line!r}; "
                              f"rebuild the graph with {maker} --force")
        words[int(parts[1])] = parts[0]
    try:
        graph = kaldifst.StdVectorFst.read(str(graph_dir / name))
    except RuntimeError as e:
        raise SpeechError(f"{graph_dir / name}: cannot read the graph ({e}); rebuild it with {maker} --force") from None
    return graph, words
