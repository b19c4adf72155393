"""A multiband WaveRNN: log-mel frames -> waveform, one GRU step per K subband samples.

    mel (B, T, n_mels)
      -> conditioning network: normalise, Conv1d k=5, residual Conv1d k=3 blocks -> (B, T, C)
      -> linear interpolation to the step rate (hop / K steps a frame)     -> (B, S, C)
    step s: GRU(cond[s], sum_k embed_k(x_k[s-1]))                            -> h (B, H)
            fc(relu(W [h; cond[s]])) -> K softmaxes over 2^bits mu-law levels -> x_k[s]
      -> mu-law decode -> PQMF synthesis (speech.tts.pqmf)                   -> (B, S * K)

Why these choices:
- Subbands (K=4 by default): the per-step cost of a GRU at batch size one is mostly fixed
  overhead, so running it at 4 kHz instead of 16 kHz is the largest single saving; DurIAN's
  multiband WaveRNN showed the quality holds.
- A 9-bit mu-law softmax per band, not a mixture of logistics: a softmax trains in few
  updates and without the instabilities of MoL's scale terms, which matters on a CPU
  budget; mu-law spends the levels where speech has its samples. The K bands of a step are
  sampled independently given h (the DurIAN simplification).
- Pre-emphasis (LPCNet's 0.85): the network models the pre-emphasised signal, and the
  generated one is de-emphasised, which tilts the sampling noise (white within each band)
  towards the low frequencies where speech has its energy, instead of hiss above 2 kHz.
- The previous samples enter through embeddings (one table per band), so at generation time
  their whole contribution to the GRU's input gates is a table lookup (LPCNet's trick), and
  the conditioning's share of the input gates and of the output layer is computed for all
  steps at once before the loop (:meth:`WaveRnn.prepare`): the loop itself is one matmul
  for the recurrence and two for the output layer.

Generation comes in two forms that draw the same samples from the same weights and noise:
:meth:`WaveRnn.reference_step` uses the layers as training does (the naive vocoder of the
benchmark), and :func:`generation_loop` runs all steps of a batch of segments in one
function, compiled by TorchScript when it is available. The noise is given (one uniform per
step and band, sampled by inverse CDF), so both, and folded or unfolded runs, are
reproducible from a seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speech.tts.pqmf import PQMF

log = logging.getLogger("speech.tts")


@dataclass
class WaveRnnConfig:
    n_mels: int = 80  # filled from the mel config
    hop_length: int = 200  # samples per mel frame; filled from the mel config
    bands: int = 4  # PQMF subbands generated per step (hop_length must be a multiple)
    bits: int = 9  # mu-law levels per band: 2^bits
    cond_channels: int = 128
    cond_blocks: int = 2  # residual conv blocks after the first conv
    embed_dim: int = 64  # previous-sample embedding per band
    hidden: int = 384  # GRU units
    fc: int = 256  # output layer units
    preemphasis: float = 0.85  # the model generates x[n] - a x[n-1]; 0: the waveform itself

    @property
    def levels(self) -> int:
        return 2 ** self.bits

    @property
    def steps_per_frame(self) -> int:
        return self.hop_length // self.bands

    @property
    def context_frames(self) -> int:
        """Frames either side of a frame that its conditioning depends on (2 for the k=5
        conv, 1 per k=3 block, 1 for the interpolation)."""
        return 3 + self.cond_blocks

    def validate(self) -> None:
        if self.hop_length % self.bands:
            raise ValueError(f"hop_length {self.hop_length} is not a multiple of bands {self.bands}")
        if not 4 <= self.bits <= 12:
            raise ValueError(f"bits={self.bits}: use 8 to 10")
        if not 0 <= self.preemphasis < 1:
            raise ValueError(f"preemphasis={self.preemphasis}: use 0 (none) to 0.95")


class Prepared(NamedTuple):
    """The conditioning's share of one batch of segments, for :func:`generation_loop`."""

    gates: torch.Tensor  # (S, B, 3H): GRU input gates from the conditioning (+ bias)
    fc: torch.Tensor  # (S, B, F): first output layer from the conditioning (+ bias)


class WaveRnn(nn.Module):
    def __init__(self, cfg: WaveRnnConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c, h = cfg.cond_channels, cfg.hidden
        # log-mel normalisation, set from the training set by speech train-vocoder
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))
        self.cond_in = nn.Conv1d(cfg.n_mels, c, 5, padding=2, padding_mode="replicate")
        self.cond_blocks = nn.ModuleList(
            nn.Conv1d(c, c, 3, padding=1, padding_mode="replicate") for _ in range(cfg.cond_blocks))
        self.embed = nn.Parameter(torch.randn(cfg.bands, cfg.levels, cfg.embed_dim) * 0.1)
        self.gru = nn.GRU(c + cfg.embed_dim, h, batch_first=True)
        self.fc1 = nn.Linear(h + c, cfg.fc)
        self.fc2 = nn.Linear(cfg.fc, cfg.bands * cfg.levels)
        self.pqmf = PQMF(cfg.bands)

    # -- conditioning ----------------------------------------------------------------------
    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) log-mel -> (B, T * steps_per_frame, C) conditioning at the step rate."""
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        x = torch.tanh(self.cond_in(x))
        for conv in self.cond_blocks:
            x = x + torch.tanh(conv(x))
        x = F.interpolate(x, scale_factor=self.cfg.steps_per_frame, mode="linear", align_corners=False)
        return x.transpose(1, 2)

    def previous(self, idx: torch.Tensor) -> torch.Tensor:
        """(..., K) mu-law indices -> (..., E): the sum of the K bands' embeddings."""
        bands = torch.arange(self.cfg.bands, device=idx.device)
        return self.embed[bands, idx].sum(-2)

    # -- training --------------------------------------------------------------------------
    def forward(self, mel: torch.Tensor, prev_idx: torch.Tensor) -> torch.Tensor:
        """Teacher forcing on a training segment: mel (B, F + 2P, n_mels) with P =
        ``context_frames`` either side, prev_idx (B, S, K) the previous step's target indices,
        S = F * steps_per_frame -> logits (B, S, K, 2^bits)."""
        start = self.cfg.context_frames * self.cfg.steps_per_frame
        cond = self.condition(mel)[:, start:start + prev_idx.shape[1]]
        x = torch.cat([cond, self.previous(prev_idx)], dim=-1)
        h, _ = self.gru(x)
        o = torch.relu(self.fc1(torch.cat([h, cond], dim=-1)))
        return self.fc2(o).view(*h.shape[:2], self.cfg.bands, self.cfg.levels)

    # -- generation ------------------------------------------------------------------------
    def silence_index(self) -> int:
        """The mu-law level of zero: the 'previous sample' of the first step."""
        return self.cfg.levels // 2

    def reference_step(self, cond: torch.Tensor, prev_idx: torch.Tensor, h: torch.Tensor,
                       noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step with the training layers: cond (B, C), prev_idx (B, K), h (B, H),
        noise (B, K) uniforms -> (indices (B, K), new h)."""
        x = torch.cat([cond, self.previous(prev_idx)], dim=-1)
        g = self.gru
        h = torch.gru_cell(x, h, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        o = torch.relu(self.fc1(torch.cat([h, cond], dim=-1)))
        logits = self.fc2(o).view(-1, self.cfg.bands, self.cfg.levels)
        return sample(logits, noise), h

    def prepare(self, cond: torch.Tensor) -> Prepared:
        """cond (B, S, C) -> the conditioning's share of the input gates and of fc1, step-major."""
        c = self.cfg.cond_channels
        g = self.gru
        gates = F.linear(cond, g.weight_ih_l0[:, :c], g.bias_ih_l0)
        fc = F.linear(cond, self.fc1.weight[:, self.cfg.hidden:], self.fc1.bias)
        return Prepared(gates.transpose(0, 1).contiguous(), fc.transpose(0, 1).contiguous())

    def loop_weights(self) -> tuple[torch.Tensor, ...]:
        """The arguments of :func:`generation_loop` after the prepared conditioning."""
        c, h = self.cfg.cond_channels, self.cfg.hidden
        g = self.gru
        # each band's embedding table pushed through its columns of the input-gate weights
        prev_gates = torch.einsum("kqe,ge->kqg", self.embed, g.weight_ih_l0[:, c:])  # (K, Q, 3H)
        return (prev_gates.contiguous(), g.weight_hh_l0.t().contiguous(), g.bias_hh_l0,
                self.fc1.weight[:, :h].t().contiguous(), self.fc2.weight.t().contiguous(), self.fc2.bias)

    def dequantize(self, idx: torch.Tensor) -> torch.Tensor:
        """Mu-law indices -> subband sample values in [-1, 1], same shape."""
        import torchaudio

        return torchaudio.functional.mu_law_decoding(idx, self.cfg.levels).to(self.embed.dtype)

    def decode(self, idx: torch.Tensor) -> np.ndarray:
        """(1, S, K) indices -> (S * K,) waveform."""
        wave = self.pqmf.synthesis(self.dequantize(idx).transpose(1, 2))[0, 0]
        return Deemphasis(self.cfg.preemphasis)(wave.cpu().numpy())


def preemphasize(wave: np.ndarray, coef: float) -> np.ndarray:
    """(N + 1,) samples, the first one the context -> (N,) pre-emphasised: x[n] - coef x[n-1]."""
    return (wave[1:] - coef * wave[:-1]).astype(np.float32)


class Deemphasis:
    """The inverse of :func:`preemphasize`, y[n] = x[n] + coef y[n-1], over chunks in order."""

    def __init__(self, coef: float):
        self.coef = coef
        self.state = np.zeros(1)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if not self.coef or chunk.size == 0:
            return chunk
        from scipy.signal import lfilter

        out, self.state = lfilter([1.0], [1.0, -self.coef], chunk.astype(np.float64), zi=self.state)
        return out.astype(np.float32)


def sample(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: logits (B, K, Q), noise (B, K) uniforms in [0, 1) -> (B, K)."""
    cdf = torch.softmax(logits, dim=-1).cumsum(-1)
    return torch.searchsorted(cdf, noise.unsqueeze(-1)).squeeze(-1).clamp_max(logits.shape[-1] - 1)


def generation_loop(gates: torch.Tensor, fc: torch.Tensor, noise: torch.Tensor, prev_gates: torch.Tensor,
                    w_hh: torch.Tensor, b_hh: torch.Tensor, w_fc1: torch.Tensor, w_fc2: torch.Tensor,
                    b_fc2: torch.Tensor, start: int) -> torch.Tensor:
    """All S steps of B segments: gates (S, B, 3H), fc (S, B, F) from :meth:`WaveRnn.prepare`,
    noise (S, B, K) -> indices (S, B, K). The GRU cell is written out (gate order r, z, n as
    torch's) so that nothing but the recurrence and the output layer is left per step."""
    steps, batch = gates.shape[0], gates.shape[1]
    bands, levels = prev_gates.shape[0], prev_gates.shape[1]
    hidden = w_hh.shape[0]
    out = torch.empty(steps, batch, bands, dtype=torch.long, device=gates.device)
    band = torch.arange(bands, device=gates.device).unsqueeze(0)
    idx = torch.full((batch, bands), start, dtype=torch.long, device=gates.device)
    h = torch.zeros(batch, hidden, dtype=gates.dtype, device=gates.device)
    for t in range(steps):
        gi = gates[t] + prev_gates[band, idx].sum(1)
        gh = torch.addmm(b_hh, h, w_hh)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = n + z * (h - n)
        o = torch.relu(torch.addmm(fc[t], h, w_fc1))
        idx = sample(torch.addmm(b_fc2, o, w_fc2).view(batch, bands, levels), noise[t])
        out[t] = idx
    return out


_compiled = None


def compiled_loop():
    """:func:`generation_loop` compiled by TorchScript (the Python loop of small ops is what
    makes naive WaveRNN generation slow); the plain function where TorchScript is missing
    or fails, which gives the same samples, only slower."""
    global _compiled
    if _compiled is None:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, not gone
                _compiled = torch.jit.script(generation_loop)
        except Exception as e:  # a torch without TorchScript
            log.warning("TorchScript unavailable (%s); generating with the plain PyTorch loop", e)
            _compiled = generation_loop
    return _compiled
