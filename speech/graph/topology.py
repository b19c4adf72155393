"""How a model's frame outputs spell a token sequence, as a transducer (the T or H of a
decoding graph). Every topology takes the number of tokens and the disambiguation labels
(which it passes as epsilon:#k self-loops, so that they reach L) and returns an FST whose
input labels are token id + 1, one per frame, and whose output labels are L's inputs."""

from __future__ import annotations

import kaldifst


def ctc_topology(num_tokens: int, disambig_labels: list[int]) -> kaldifst.StdVectorFst:
    """T, the CTC topology: one state per token (the blank's is the start); reading token k
    moves to k's state and outputs k unless it repeats the state's token or is the blank, so
    any frame sequence with repeats and blanks collapses to its token sequence."""
    t = kaldifst.StdVectorFst()
    for _ in range(num_tokens):
        t.set_final(state=t.add_state(), weight=0)
    t.start = 0
    for i in range(num_tokens):
        for k in range(num_tokens):
            out = 0 if (k == i or k == 0) else k + 1
            t.add_arc(state=i, arc=kaldifst.StdArc(ilabel=k + 1, olabel=out, weight=0, nextstate=k))
        for d in disambig_labels:
            t.add_arc(state=i, arc=kaldifst.StdArc(ilabel=0, olabel=d, weight=0, nextstate=i))
    return t
