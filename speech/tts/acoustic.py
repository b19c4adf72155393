"""The TTS acoustic model: phone tokens + durations -> normalised log-mel frames.

A recurrent member of the duration-based family (DurIAN, FastSpeech 2, Non-Attentive
Tacotron): no attention, so no skipped or repeated words; the alignment is given by
durations, the aligner's when training, the model's own prediction when synthesising.

    phones, stress, position (B, N) -> summed embeddings                     (B, N, E)
      -> BiLSTM encoder (packed)                                              (B, N, 2He)
      -> duration predictor: 2 x (conv1d, ReLU, LayerNorm, dropout) + linear  (B, N) log(1 + frames)
    length regulator: each token's vector repeated for its frames,
      + 2 positional features per frame (place inside the token, log length) (B, T, 2He + 2)
      -> BiLSTM decoder (packed), r frames a step -> linear                   (B, T, n_mels) mel
      -> optional Tacotron-2 postnet (convs, batch norm, tanh), residual      (B, T, n_mels) mel_post

Why these choices:
- Durations in the log domain, log(1 + frames): phone lengths are skewed (a few long
  vowels and pauses, many short consonants) and what matters is a relative error, one
  frame off a 2-frame stop is worse than one off a 20-frame vowel; the squared error of
  the logarithm weighs them so. The +1 keeps tokens of 0 frames (pauses the speaker did
  not make) finite.
- Positional features: after the regulator, all frames of a token carry the same vector;
  a BiLSTM could count frames, but only by learning to. DurIAN's fix, given here as two
  plain inputs: where the frame is inside its token, (k + 0.5) / d, and how long the token
  is, log(1 + d), so the decoder knows where it stands in a phone without counting.
- Reduction factor r (Tacotron's): the decoder takes the mean of r consecutive frames'
  inputs and emits those r frames from one step. The recurrence, most of the cost on a CPU
  (its steps are sequential), runs r times fewer steps; the postnet, at the full frame
  rate, smooths the joins.
- Packing in every LSTM, zeroed padding before every convolution, and batch norm whose
  statistics skip the padding: an utterance's output does not depend on what shares its
  batch, so training on padded batches matches synthesising one utterance alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class AcousticConfig:
    """The ``model:`` section of conf/tts/acoustic*.yaml."""

    num_phones: int = 0  # filled by the training stage from the frontend's token table (id 0 = padding)
    num_stress: int = 4
    num_positions: int = 5  # position of the phone in its word
    n_mels: int = 80  # filled from the mel config
    embed_dim: int = 256
    encoder_hidden: int = 256  # per direction
    encoder_layers: int = 2
    duration_channels: int = 256
    duration_kernel: int = 3
    decoder_hidden: int = 256  # per direction
    decoder_layers: int = 2
    reduction: int = 1  # frames per decoder step (Tacotron's r): the decoder runs at 1/r of the frame rate
    postnet_layers: int = 5  # 0: no postnet
    postnet_channels: int = 256
    postnet_kernel: int = 5
    dropout: float = 0.1
    duration_weight: float = 1.0  # weight of the duration loss against the mel loss

    def validate(self) -> None:
        """ValueError naming the first key whose value cannot build a model. ``num_phones``
        may still be 0 (not filled yet); :class:`AcousticModel` itself needs it >= 2."""
        rules = [
            ("num_phones", self.num_phones == 0 or self.num_phones >= 2,
             "0 (filled from the token table) or >= 2 (padding + one phone)"),
            ("num_stress", self.num_stress >= 1, ">= 1"),
            ("num_positions", self.num_positions >= 1, ">= 1"),
            ("n_mels", self.n_mels >= 1, ">= 1"),
            ("embed_dim", self.embed_dim >= 1, ">= 1"),
            ("encoder_hidden", self.encoder_hidden >= 1, ">= 1"),
            ("encoder_layers", self.encoder_layers >= 1, ">= 1"),
            ("duration_channels", self.duration_channels >= 1, ">= 1"),
            # odd kernels keep the length with symmetric padding
            ("duration_kernel", self.duration_kernel >= 1 and self.duration_kernel % 2 == 1, "odd and >= 1"),
            ("decoder_hidden", self.decoder_hidden >= 1, ">= 1"),
            ("decoder_layers", self.decoder_layers >= 1, ">= 1"),
            ("reduction", self.reduction >= 1, ">= 1"),
            ("postnet_layers", self.postnet_layers >= 0, ">= 0 (0: no postnet)"),
            ("postnet_channels", self.postnet_channels >= 1, ">= 1"),
            ("postnet_kernel", self.postnet_kernel >= 1 and self.postnet_kernel % 2 == 1, "odd and >= 1"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("duration_weight", self.duration_weight >= 0, ">= 0"),
        ]
        for key, ok, expected in rules:
            if not ok:
                raise ValueError(f"{key}: must be {expected} (got {getattr(self, key)!r})")


class AcousticOutput(NamedTuple):
    mel: torch.Tensor  # (B, T, n_mels) decoder output, normalised mel scale
    mel_post: torch.Tensor  # (B, T, n_mels) after the postnet (== mel when postnet_layers == 0)
    log_duration: torch.Tensor  # (B, N) predicted log(1 + frames) per token
    frame_lengths: torch.Tensor  # (B,) long: frames of each utterance (= sum of the given durations)


def length_regulate(x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Repeat each token's vector for its frames: x (B, N, D), durations (B, N) long >= 0 ->
    (frames (B, T, D), positional features (B, T, 2), frame_lengths (B,)), T the longest
    utterance's total. The features of a frame k of a d-frame token are (k + 0.5) / d and
    log(1 + d). Everything past an utterance's end is zero; a token of 0 frames gets none."""
    b, n, d = x.shape
    ends = durations.cumsum(1)  # (B, N): the frame after each token's last
    frame_lengths = ends[:, -1]
    t = int(frame_lengths.max()) if b else 0
    frame = torch.arange(t, device=x.device).expand(b, t).contiguous()  # (B, T)
    # a frame's token is the first one that ends after it; right=True steps over the
    # tokens of 0 frames, whose end equals the next token's start
    token = torch.searchsorted(ends, frame, right=True).clamp_max(n - 1)
    valid = (frame < frame_lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
    frames = x.gather(1, token.unsqueeze(-1).expand(b, t, d)) * valid
    length = durations.gather(1, token)
    start = ends.gather(1, token) - length
    inside = (frame - start + 0.5) / length.clamp_min(1)
    features = torch.stack([inside, torch.log1p(length.to(inside.dtype))], dim=-1).to(x.dtype) * valid
    return frames, features, frame_lengths


def lengths_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths -> (B, size) bool, True before each length."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, L, D), lengths (B,) -> (B, L, 2H); zero past each length. Packing keeps the
    backward direction from starting in the padding, which would change an utterance's
    output with the length of the longest one in its batch."""
    # an utterance of 0 frames is run over one padding frame (packing refuses length 0),
    # whose output the caller masks away
    packed = pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


def bilstm(in_dim: int, hidden: int, layers: int, dropout: float) -> nn.LSTM:
    # torch's between-layer dropout means nothing (and warns) for a single layer
    return nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                   dropout=dropout if layers > 1 else 0.0)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch norm of (B, C, T) whose training statistics are over the valid frames only
    (mask (B, 1, T)): counting padding zeros would shift the running mean and variance away
    from what an unpadded utterance gives at synthesis. Evaluation is plain batch norm."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        n = mask.sum().clamp_min(2)
        mean = (x * mask).sum((0, 2)) / n
        var = ((x - mean[:, None]) * mask).pow(2).sum((0, 2)) / n
        with torch.no_grad():  # running variance unbiased, as nn.BatchNorm1d keeps it
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_((var * n / (n - 1)).to(self.running_var.dtype), self.momentum)
            self.num_batches_tracked += 1
        x = (x - mean[:, None]) * torch.rsqrt(var[:, None] + self.eps)
        return x * self.weight[:, None] + self.bias[:, None]


class DurationPredictor(nn.Module):
    """FastSpeech 2's variance predictor: (B, N, D) encoder output, (B, N) bool mask ->
    (B, N) log(1 + frames), 0 at padding."""

    def __init__(self, in_dim: int, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(in_dim, channels, kernel, padding=kernel // 2),
                                    nn.Conv1d(channels, channels, kernel, padding=kernel // 2)])
        self.norms = nn.ModuleList([nn.LayerNorm(channels), nn.LayerNorm(channels)])
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        for conv, norm in zip(self.convs, self.norms):
            # zeroed padding makes the last token's right neighbours zeros, as the conv's
            # own padding gives the utterance alone
            x = torch.relu(conv((x * m).transpose(1, 2))).transpose(1, 2)
            x = self.dropout(norm(x))
        return self.proj(x).squeeze(-1) * mask


class Postnet(nn.Module):
    """Tacotron 2's postnet: (B, T, n_mels) mel, (B, T, 1) bool mask -> (B, T, n_mels) the
    residual to add, 0 past each end. Convs with batch norm, tanh on all but the last."""

    def __init__(self, n_mels: int, channels: int, kernel: int, layers: int, dropout: float):
        super().__init__()
        dims = [n_mels] + [channels] * (layers - 1) + [n_mels]
        # no conv bias: the batch norm's shift right after it is the same parameter
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding=kernel // 2, bias=False)
                                   for a, b in zip(dims, dims[1:]))
        self.norms = nn.ModuleList(MaskedBatchNorm1d(b) for b in dims[1:])
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = mel.transpose(1, 2)
        m = mask.transpose(1, 2).to(x.dtype)
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x * m), m)
            if i < last:
                x = torch.tanh(x)
            x = self.dropout(x)
        return (x * m).transpose(1, 2)


class AcousticModel(nn.Module):
    """Phones -> durations -> normalised log-mel frames (see the module docstring)."""

    def __init__(self, cfg: AcousticConfig):
        super().__init__()
        cfg.validate()
        if cfg.num_phones < 2:
            raise ValueError(f"num_phones: must be >= 2 (padding + one phone) to build a model (got {cfg.num_phones})")
        self.cfg = cfg
        # log-mel normalisation, set from the training mels by the training stage
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))
        self.phone_embed = nn.Embedding(cfg.num_phones, cfg.embed_dim, padding_idx=0)
        self.stress_embed = nn.Embedding(cfg.num_stress, cfg.embed_dim)
        self.position_embed = nn.Embedding(cfg.num_positions, cfg.embed_dim)
        self.encoder = bilstm(cfg.embed_dim, cfg.encoder_hidden, cfg.encoder_layers, cfg.dropout)
        enc_dim = 2 * cfg.encoder_hidden
        self.duration = DurationPredictor(enc_dim, cfg.duration_channels, cfg.duration_kernel, cfg.dropout)
        self.decoder = bilstm(enc_dim + 2, cfg.decoder_hidden, cfg.decoder_layers, cfg.dropout)
        self.mel_out = nn.Linear(2 * cfg.decoder_hidden, cfg.reduction * cfg.n_mels)
        self.postnet = (Postnet(cfg.n_mels, cfg.postnet_channels, cfg.postnet_kernel, cfg.postnet_layers, cfg.dropout)
                        if cfg.postnet_layers else None)
        self.dropout = nn.Dropout(cfg.dropout)

    def normalise(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(..., n_mels) log-mel -> the model's scale."""
        return (log_mel - self.mel_mean) / self.mel_std

    def denormalise(self, mel: torch.Tensor) -> torch.Tensor:
        """(..., n_mels) the model's scale -> log-mel."""
        return mel * self.mel_std + self.mel_mean

    def encode(self, phones: torch.Tensor, stress: torch.Tensor, position: torch.Tensor,
               token_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) ids, (B,) lengths -> (encoder output (B, N, 2He), token mask (B, N) bool)."""
        x = self.phone_embed(phones) + self.stress_embed(stress) + self.position_embed(position)
        mask = lengths_mask(token_lengths.to(phones.device), phones.shape[1])
        return self.dropout(run_lstm(self.encoder, x, token_lengths)), mask

    def decode(self, enc: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """enc (B, N, 2He), durations (B, N) long, 0 at padding -> (mel, mel_post (B, T, n_mels),
        frame_lengths (B,))."""
        frames, features, frame_lengths = length_regulate(enc, durations)
        b, t = frames.shape[:2]
        if t == 0:  # no utterance has a frame (e.g. an untrained model's predictions)
            empty = frames.new_zeros(b, 0, self.cfg.n_mels)
            return empty, empty, frame_lengths
        valid = lengths_mask(frame_lengths, t).unsqueeze(-1)
        x = torch.cat([frames, features], dim=-1)  # (B, T, 2He + 2)
        r = self.cfg.reduction
        if r > 1:  # each decoder step sees the mean of its r frames' inputs, and emits r frames
            x = F.pad(x, (0, 0, 0, -t % r)).unflatten(1, (-1, r)).mean(2)  # (B, ceil(T/r), 2He + 2)
        h = self.dropout(run_lstm(self.decoder, x, torch.div(frame_lengths + r - 1, r, rounding_mode="floor")))
        mel = self.mel_out(h).reshape(b, -1, self.cfg.n_mels)[:, :t] * valid
        mel_post = mel + self.postnet(mel, valid) if self.postnet is not None else mel
        return mel, mel_post, frame_lengths

    def forward(self, phones: torch.Tensor, stress: torch.Tensor, position: torch.Tensor,
                token_lengths: torch.Tensor, durations: torch.Tensor) -> AcousticOutput:
        """Teacher-forced: phones/stress/position (B, N) long, 0-padded, token_lengths (B,),
        durations (B, N) long, the aligned frames per token -> :class:`AcousticOutput`
        with T = the longest sum of durations."""
        enc, mask = self.encode(phones, stress, position, token_lengths)
        log_duration = self.duration(enc, mask)
        mel, mel_post, frame_lengths = self.decode(enc, durations * mask)
        return AcousticOutput(mel, mel_post, log_duration, frame_lengths)

    @torch.no_grad()
    def infer(self, phones: torch.Tensor, stress: torch.Tensor, position: torch.Tensor,
              token_lengths: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Synthesis with the predicted durations (call ``eval()`` first): inputs as
        :meth:`forward` -> (log_mel (B, T, n_mels) denormalised, 0 past each end,
        durations (B, N) long, frame_lengths (B,)). ``speed`` divides every duration: 2 is
        twice as fast."""
        if not speed > 0:
            raise ValueError(f"speed: must be > 0 (got {speed})")
        enc, mask = self.encode(phones, stress, position, token_lengths)
        # the predictor's 0 at padding is exp(0) - 1 = 0 frames there
        frames = torch.expm1(self.duration(enc, mask)).clamp_min(0) / speed
        durations = torch.round(frames).long()
        _, mel_post, frame_lengths = self.decode(enc, durations)
        valid = lengths_mask(frame_lengths, mel_post.shape[1]).unsqueeze(-1)
        return self.denormalise(mel_post) * valid, durations, frame_lengths


def acoustic_loss(out: AcousticOutput, target: torch.Tensor, durations: torch.Tensor, token_lengths: torch.Tensor,
                  duration_weight: float) -> tuple[torch.Tensor, int, dict[str, float]]:
    """target (B, T, n_mels) normalised mels, T = out.mel.shape[1]; durations (B, N) the
    aligned frames, token_lengths (B,) -> (summed loss, valid frames, per-item means of the
    parts "mel", "post", "duration"). Summed loss / frames = mean L1 (over bins) of mel and
    of mel_post per valid frame + duration_weight * mean squared error of log(1 + frames)
    per valid token."""
    frames = lengths_mask(out.frame_lengths, out.mel.shape[1])
    tokens = lengths_mask(token_lengths.to(durations.device), durations.shape[1])
    # masked_fill, not a product: whatever the padding holds (even inf) stays out
    mel = (out.mel - target).abs().mean(-1).masked_fill(~frames, 0).sum()
    post = (out.mel_post - target).abs().mean(-1).masked_fill(~frames, 0).sum()
    log_target = torch.log1p(durations.to(out.log_duration.dtype))
    duration = (out.log_duration - log_target).pow(2).masked_fill(~tokens, 0).sum()
    count = int(out.frame_lengths.sum())
    n_tokens = max(int(tokens.sum()), 1)
    # the trainer divides by the frame count; scaling the token mean by it first keeps the
    # duration term a per-token mean, whatever the ratio of frames to tokens in a batch
    total = mel + post + duration_weight * count * duration / n_tokens
    per_frame = max(count, 1)
    parts = {"mel": mel.item() / per_frame, "post": post.item() / per_frame, "duration": duration.item() / n_tokens}
    return total, count, parts
