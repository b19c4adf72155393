"""Decoding graphs as Kaldi and EESEN build them: topology o min(det(L o G)).

- :mod:`~speech.graph.lexicon`: L, word spellings with disambiguation symbols;
- :mod:`~speech.graph.grammar`: G, an ARPA n-gram LM (kaldilm's arpa2fst) or a word loop,
  and the word-cost transducer that puts a per-word score on a finished graph;
- :mod:`~speech.graph.topology`: how model outputs spell a token: the CTC topology T
  (an HMM topology H comes beside it for HCLG);
- :mod:`~speech.graph.build`: the composition, one code path for every topology;
- :mod:`~speech.graph.make_graph`: the ``speech make-graph`` stage.

Graphs are kaldifst (OpenFst) transducers; input labels are token id + 1 (0 is epsilon),
output labels the ids of GRAPH_DIR/words.txt. Only these modules and the searches import
kaldifst, so the rest of the toolkit starts without it.
"""
