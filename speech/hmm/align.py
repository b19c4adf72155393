"""Viterbi alignment of utterances to their training graphs, and what an alignment says.

An alignment is the transition id of every frame (int32 [T], :mod:`speech.hmm.topology`).
The best path through an utterance's training graph (H o C o L o transcript) is found by
Kaldi's beam search (kaldi-decoder), as gmm-align-compiled does: beam 10, retried at 40
when no path reaches the end (and then without pruning); the flat start takes a random path of the right length
(kaldifst.equal_align, Kaldi's align-equal-compiled).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speech.errors import SpeechError
from speech.fileio import read_key_value
from speech.hmm.topology import ENTER


def read_transcripts(data_dir: Path) -> dict[str, list[str]]:
    """utterance -> words of DATA_DIR/text; an empty transcript is a one-line error (it has
    no path through a training graph)."""
    text = read_key_value(data_dir / "text", allow_empty_value=True)
    for utt, words in text.items():
        if not words.split():
            raise SpeechError(f"{data_dir}/text: '{utt}' has an empty transcript, which no alignment can follow; "
                              "give it its words or leave it out (speech subset-data-dir)")
    return {utt: words.split() for utt, words in text.items()}


def _path_ilabels(path) -> np.ndarray:
    import kaldifst

    ok, ilabels, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return np.asarray(ilabels, dtype=np.int32) - 1 if ok else np.zeros(0, dtype=np.int32)


def viterbi(graph, scores: np.ndarray, beam: float, retry_beam: float) -> tuple[np.ndarray | None, float]:
    """(transition ids [T], acoustic + graph score of the path) through ``graph`` for
    ``scores`` [T, 2P] (:meth:`HmmSystem.tid_scores`); (None, -inf) when no path reaches a
    final state (the utterance has fewer frames than its transcript has states)."""
    from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

    # the last try is all but unpruned: an utterance's training graph is small enough, and a
    # voice unlike the training voices can lose the right path even at the retry beam
    for b in (beam, retry_beam, 1e4):
        decoder = FasterDecoder(graph, FasterDecoderOptions(beam=b))
        decoder.decode(DecodableCtc(scores))
        if decoder.reached_final():
            ok, path = decoder.get_best_path()
            if ok:
                tids = _path_ilabels(path)
                if len(tids) == len(scores):
                    return tids, float(scores[np.arange(len(tids)), tids].sum())
    return None, float("-inf")


def equal_alignment(graph, num_frames: int, seed: int) -> np.ndarray | None:
    """A random path of exactly ``num_frames`` frames through ``graph`` (the flat start);
    None when the utterance is too short for its transcript."""
    import kaldifst

    ok, path = kaldifst.equal_align(graph, num_frames, seed)
    if not ok:
        return None
    tids = _path_ilabels(path)
    return tids if len(tids) == num_frames else None


def transition_counts(tids: np.ndarray, num_pdfs: int) -> torch.Tensor:
    """[P, 2] float64: how often each pdf's state was entered and how often it looped, over
    the frames of one or more alignments (what the self-loop probabilities are estimated from)."""
    counts = np.bincount(tids, minlength=2 * num_pdfs).astype(np.float64)
    return torch.from_numpy(counts.reshape(num_pdfs, 2))


@dataclass(frozen=True)
class PhoneSpan:
    phone: int  # phone id
    start: int  # first frame
    end: int  # one past the last frame


def phone_spans(tids: np.ndarray, owner: list[tuple[int, int]]) -> list[PhoneSpan]:
    """The phones of an alignment: a phone starts where a frame enters its state 0.

    owner: pdf -> (phone, state) (the tree's :meth:`owner`)."""
    pdfs = tids // 2
    phone_of, state_of = (np.asarray(column) for column in zip(*owner))
    starts = np.flatnonzero((tids % 2 == ENTER) & (state_of[pdfs] == 0)).tolist()
    ends = starts[1:] + [len(tids)]
    return [PhoneSpan(int(phone_of[pdfs[s]]), s, e) for s, e in zip(starts, ends)]
