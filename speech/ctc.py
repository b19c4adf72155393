"""CTC helpers shared by the recognisers' searches, the aligners and training.

Every function here takes CTC output as ``log_probs [B, T, V]`` (log-softmax over V
tokens, id 0 the blank) with ``lengths [B]`` valid frames per row.
"""

from __future__ import annotations

import torch

BLANK_ID = 0


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = BLANK_ID) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. [B, T, V] -> B token-id lists."""
    best = log_probs.argmax(dim=-1).cpu()
    hyps = []
    for seq, n in zip(best, lengths.cpu().tolist()):
        seq = torch.unique_consecutive(seq[:n])
        hyps.append([int(t) for t in seq if t != blank])
    return hyps


def append_boundary_frame(log_probs: torch.Tensor, lengths: torch.Tensor,
                          boundary_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log_probs [B, T, V] + lengths [B] -> float32 CPU log_probs [B, T + 1, V] in which frame
    ``lengths[b]`` is certainly the word boundary, and lengths [B] + 1.

    Both lexicon searches (flashlight's and the WFST) end a word only on the boundary token,
    which a CTC model does not emit after the last word: without one more frame holding it,
    a search prefers a shorter last word ("one" -> "on", "oh" dropped; measured on the
    digits test set). Units without a boundary token pass the blank's id, which changes no
    path's words."""
    log_probs = log_probs.detach().float().cpu()
    lengths = lengths.cpu().long()
    b, t, v = log_probs.shape
    padded = torch.full((b, t + 1, v), -1e4)
    padded[:, :t] = log_probs
    rows = torch.arange(b)
    padded[rows, lengths] = -1e4  # in a padded batch this frame held padding output
    padded[rows, lengths, boundary_id] = 0.0
    return padded, lengths + 1
