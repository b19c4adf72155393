"""Bidirectional-LSTM acoustic model trained with CTC (EESEN / ESPnet ``blstmp`` style).

feats [B, T, D] -> optional frame stacking (concatenate k frames, keep every k-th)
-> N x (BLSTM over packed sequences -> optional projection + tanh -> dropout)
-> linear -> log-softmax [B, T', V], with T' = ceil(T / k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class BlstmCtcConfig:
    """Sizes of the network. ``input_dim``/``vocab_size`` come from the data, not YAML."""

    input_dim: int = 80
    vocab_size: int = 0
    subsample: int = 3  # frames stacked per output frame (1: none)
    hidden_size: int = 256  # LSTM cells per direction
    num_layers: int = 3
    proj_size: int = 0  # 0: no projection; else each layer's 2*hidden output -> proj_size
    dropout: float = 0.2


def stack_frames(feats: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate each run of ``k`` frames: [B, T, D] -> [B, ceil(T/k), k*D].

    The last partial run is zero-padded; ``lengths`` are rounded up to match, so an
    utterance keeps every one of its frames. Frames past each length are zeroed first, so
    an utterance's output does not depend on what else shares its batch.
    """
    if k == 1:
        return feats, lengths
    b, t, d = feats.shape
    valid = torch.arange(t, device=feats.device)[None, :] < lengths.to(feats.device)[:, None]
    feats = feats * valid.unsqueeze(-1)
    pad = (-t) % k
    if pad:
        feats = torch.nn.functional.pad(feats, (0, 0, 0, pad))
    stacked = feats.reshape(b, (t + pad) // k, k * d)
    return stacked, torch.div(lengths + k - 1, k, rounding_mode="floor")


class BlstmCtc(nn.Module):
    """BLSTM-CTC acoustic model. Output id 0 is the CTC blank."""

    def __init__(self, cfg: BlstmCtcConfig):
        super().__init__()
        if cfg.vocab_size < 2:
            raise ValueError("vocab_size must be at least 2 (blank + one token)")
        self.cfg = cfg
        self.lstms = nn.ModuleList()
        self.projections = nn.ModuleList()
        in_dim = cfg.input_dim * cfg.subsample
        for _ in range(cfg.num_layers):
            self.lstms.append(nn.LSTM(in_dim, cfg.hidden_size, batch_first=True, bidirectional=True))
            out_dim = 2 * cfg.hidden_size
            if cfg.proj_size > 0:
                self.projections.append(nn.Linear(out_dim, cfg.proj_size))
                out_dim = cfg.proj_size
            in_dim = out_dim
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(in_dim, cfg.vocab_size)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats [B, T, D] float, lengths [B] int64 -> (log_probs [B, T', V], out_lengths [B])."""
        x, lengths = stack_frames(feats, lengths, self.cfg.subsample)
        t_max = x.shape[1]
        # pack_padded_sequence wants lengths on the CPU; packing skips the padded frames.
        cpu_lengths = lengths.cpu()
        for i, lstm in enumerate(self.lstms):
            packed = pack_padded_sequence(x, cpu_lengths, batch_first=True, enforce_sorted=False)
            out, _ = lstm(packed)
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=t_max)
            if self.projections:
                x = torch.tanh(self.projections[i](x))
            x = self.dropout(x)
        return self.output(x).log_softmax(dim=-1), lengths

