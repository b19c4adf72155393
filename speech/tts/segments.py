"""Vocoder training data: random short segments of (ground-truth mel, subband targets).

WaveRNN-family vocoders train on segments a fraction of a second long (fatchord/WaveRNN:
5 frames): the GRU is unrolled over those steps only, so an update costs what its batch of
segments costs whatever the utterances' lengths. A whole data dir's mels and audio (at the
mel config's rate) are held in memory: two hours of 16 kHz speech is about 0.5 GB.

A batch is a function of (seed, epoch, position) alone, so a resumed run draws exactly the
batches the interrupted one would have (the contract of :mod:`speech.train.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speech.data.datadir import DataDir, iter_utterance_audio
from speech.errors import SpeechError
from speech.tts.pqmf import PQMF
from speech.tts.vocoder import WaveRnnConfig, preemphasize


@dataclass
class SegmentBatch:
    """mel (B, F + 2P, n_mels) frames with P context frames either side; prev and target
    (B, F * steps_per_frame, K) mu-law indices of the previous and the current step."""

    mel: torch.Tensor
    prev: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return self.mel.shape[0]

    def to(self, device: torch.device) -> "SegmentBatch":
        return SegmentBatch(self.mel.to(device), self.prev.to(device), self.target.to(device))


class Utterances:
    """Every utterance of a data dir with mels: (T, n_mels) float32 and (T * hop,) samples."""

    def __init__(self, data_dir: str | Path, sample_rate: int, hop: int):
        d = DataDir.read(data_dir)
        feats = kaldiio.load_scp(str(Path(data_dir) / "feats.scp"))
        self.mels: list[np.ndarray] = []
        self.audio: list[np.ndarray] = []
        self.ids: list[str] = []
        for utt, samples in iter_utterance_audio(d, sample_rate):
            if utt not in feats:
                raise SpeechError(f"{data_dir}/feats.scp: no mels for utterance '{utt}'; run speech compute-mel again")
            mel = np.asarray(feats[utt], dtype=np.float32)
            # the mel of N samples has 1 + N // hop frames: pad the audio to a whole number of frames
            n = mel.shape[0] * hop
            self.mels.append(mel)
            self.audio.append(np.pad(samples[:n], (0, max(0, n - samples.size))))
            self.ids.append(utt)
        if not self.ids:
            raise SpeechError(f"{data_dir}: no utterances")

    def mel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and standard deviation of the log-mels, (n_mels,) each."""
        frames = np.concatenate(self.mels)
        return torch.from_numpy(frames.mean(0)), torch.from_numpy(frames.std(0).clip(1e-3))


class Segments:
    """``count`` random segments of ``frames`` frames per epoch, in batches of ``batch_size``
    (a fixed set when ``fixed``, for dev). Longer utterances are drawn more often, so every
    second of speech is equally likely."""

    def __init__(self, utts: Utterances, model: WaveRnnConfig, frames: int, batch_size: int, count: int,
                 seed: int, fixed: bool = False):
        self.utts, self.cfg = utts, model
        self.frames, self.batch_size, self.count = frames, batch_size, count
        self.seed, self.fixed = seed, fixed
        lengths = np.array([m.shape[0] for m in utts.mels], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.pqmf = PQMF(model.bands)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        self.start = start

    def __len__(self) -> int:
        return -(-self.count // self.batch_size)

    def __iter__(self):
        start, self.start = self.start, 0
        for b in range(start, len(self)):
            n = min(self.batch_size, self.count - b * self.batch_size)
            epoch = 0 if self.fixed else self.epoch
            yield self.batch(np.random.default_rng([self.seed, epoch, b]), n)

    def batch(self, rng: np.random.Generator, n: int) -> SegmentBatch:
        cfg, frames = self.cfg, self.frames
        hop, pad = cfg.hop_length, cfg.context_frames
        margin = (self.pqmf.taps // 2 // cfg.bands + 1) * cfg.bands  # samples the analysis filter reaches
        mels, waves = [], []
        for u in rng.choice(len(self.weights), size=n, p=self.weights):
            mel, audio = self.utts.mels[u], self.utts.audio[u]
            f0 = int(rng.integers(0, max(1, mel.shape[0] - frames + 1)))
            rows = np.clip(np.arange(f0 - pad, f0 + frames + pad), 0, mel.shape[0] - 1)  # edges repeat
            mels.append(mel[rows])
            # one step before the segment (its first "previous sample") and the filter's reach
            # (and one sample more on the left, the pre-emphasis filter's)
            lo, hi = f0 * hop - cfg.bands - margin - 1, (f0 + frames) * hop + margin
            wave = np.zeros(hi - lo, dtype=np.float32)
            a, b = max(lo, 0), min(hi, audio.size)
            wave[a - lo:b - lo] = audio[a:b]
            waves.append(preemphasize(wave, cfg.preemphasis))
        with torch.no_grad():
            bands = self.pqmf.analysis(torch.from_numpy(np.stack(waves)).unsqueeze(1))  # (B, K, steps)
        import torchaudio

        skip = margin // cfg.bands
        steps = frames * cfg.steps_per_frame
        idx = torchaudio.functional.mu_law_encoding(bands.clamp(-1.0, 1.0), cfg.levels).transpose(1, 2)
        idx = idx[:, skip:skip + steps + 1]  # (B, steps + 1, K)
        return SegmentBatch(torch.from_numpy(np.stack(mels)), idx[:, :-1].contiguous(), idx[:, 1:].contiguous())
