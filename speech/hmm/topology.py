"""HMM topology, transition ids and H, the transducer from frames to context-dependent phones.

Every phone is a left-to-right HMM: 3 emitting states, 5 for silence (Kaldi's proto
topology gives silence more states so that long pauses are not forced through three; its
silence states are also fully connected among themselves, which this baseline leaves out).
Each state has a self-loop and one arc forward; after its last state the phone ends.

Transition ids are how a frame says which state emitted it and how it got there, as in
Kaldi: ``tid = 2 * pdf + kind`` with kind :data:`ENTER` (the frame entered the state) or
:data:`LOOP` (it stayed). A pdf belongs to exactly one (phone, state) (the tree has a root per
pair), so a tid names its phone and state, and a phone starts at a frame that enters its
state 0: phone boundaries come out of a frame alignment without the graph. Graph input
labels are tid + 1 (0 is epsilon), so the decoder's column k-1 holds tid k-1's score.

The self-loop probability is one per pdf. In a graph, ``self_loop_scale`` multiplies the
log-probabilities of the stay-or-leave choice (Kaldi's ``--self-loop-scale``, 0.1 by
default: with the acoustic scale 0.1 it weighs durations like the acoustics).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SILENCE = "SIL"
ENTER, LOOP = 0, 1


@dataclass(frozen=True)
class HmmTopology:
    """The phone set and each phone's number of states; phone id = index + 1 (0 is reserved
    for "no phone", the context at an utterance's edge)."""

    phones: tuple[str, ...]
    states: tuple[int, ...]

    @classmethod
    def standard(cls, phones: list[str], states: int = 3, silence_states: int = 5) -> HmmTopology:
        """:data:`SILENCE` first with ``silence_states``, then ``phones`` with ``states``."""
        names = [SILENCE] + [p for p in phones if p != SILENCE]
        return cls(tuple(names), tuple(silence_states if p == SILENCE else states for p in names))

    def phone_id(self, name: str) -> int:
        return self.phones.index(name) + 1

    def num_states(self) -> dict[int, int]:
        """phone id -> its number of states (the tree's roots)."""
        return {i + 1: s for i, s in enumerate(self.states)}


def tid_pdfs(num_pdfs: int) -> torch.Tensor:
    """[2 * num_pdfs] int64: the pdf of each transition id."""
    return torch.arange(2 * num_pdfs) // 2


def window_context(window: list[int]) -> tuple[int, int, int]:
    """(left, center, right) of one of compose_context's phone windows: [c] for context
    width 1 (monophones), [l, c, r] for 3."""
    return (0, window[0], 0) if len(window) == 1 else (window[0], window[1], window[2])


def hmm_transducer(windows: list[list[int]], pdf_of, loop_logprob: torch.Tensor, num_states: dict[int, int],
                   self_loop_scale: float = 0.1):
    """H for C o LG: input labels tid + 1, output labels the window indices of compose_context.

    windows: compose_context's ilabels: [] epsilon, [0] its start-up symbol and [-k]
    disambiguation symbols, else a phone window. The start-up and disambiguation symbols read
    no frame, but they keep their own input labels, 2P + 1 and up (after the tids'), so that
    H o CLG stays determinizable (homophones differ only by them, as in Kaldi's Ha.fst);
    :func:`speech.hmm.graph.hmm_graph` removes them once it is determinized.
    pdf_of(left, center, right, state) -> pdf id (the tree). loop_logprob: [P] ln of each
    pdf's self-loop probability.

    One hub state (start and final); each window is a chain of its center phone's states,
    entered from the hub and left by an epsilon arc back to it.
    """
    import kaldifst

    stay = (loop_logprob * self_loop_scale).tolist()
    leave = (torch.log1p(-loop_logprob.exp().clamp(max=1 - 1e-6)) * self_loop_scale).tolist()
    h = kaldifst.StdVectorFst()
    hub = h.add_state()
    h.start = hub
    h.set_final(state=hub, weight=0)
    disambig = 2 * len(stay) + 1
    for index, window in enumerate(windows):
        if not window:
            continue
        if len(window) == 1 and window[0] <= 0:
            h.add_arc(state=hub, arc=kaldifst.StdArc(ilabel=disambig, olabel=index, weight=0, nextstate=hub))
            disambig += 1
            continue
        left, center, right = window_context(window)
        prev, prev_pdf = hub, None
        for s in range(num_states[center]):
            pdf = pdf_of(left, center, right, s)
            q = h.add_state()
            h.add_arc(state=prev, arc=kaldifst.StdArc(
                ilabel=2 * pdf + ENTER + 1, olabel=index if prev == hub else 0,
                weight=0 if prev_pdf is None else -leave[prev_pdf], nextstate=q))
            h.add_arc(state=q, arc=kaldifst.StdArc(ilabel=2 * pdf + LOOP + 1, olabel=0, weight=-stay[pdf],
                                                   nextstate=q))
            prev, prev_pdf = q, pdf
        h.add_arc(state=prev, arc=kaldifst.StdArc(ilabel=0, olabel=0, weight=-leave[prev_pdf], nextstate=hub))
    return h
