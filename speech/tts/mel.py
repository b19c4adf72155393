"""The one mel spectrogram of the synthesis half: what the vocoder is conditioned on and,
later, what the acoustic model predicts (``conf/tts/mel.yaml``).

Frames are centred (the signal is reflect-padded by n_fft/2), so an utterance of N samples
has ``1 + N // hop_length`` frames and frame i describes the audio around sample
``i * hop_length``; a vocoder turns frames [f, f+n) into samples [f*hop, (f+n)*hop).
Values are ``ln(max(mel magnitude, log_floor))`` of a Slaney-normalised mel filter bank
applied to the STFT magnitude, the convention of Tacotron 2 / HiFi-GAN recipes.

Every data dir of mels and every model dir that consumes them keeps a copy of this config
(``mel.yaml``); :func:`check_same` refuses mels made with another one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch

from speech.config import load_config, save_config
from speech.data.datadir import MEL_CONFIG  # its name inside data dirs and model dirs
from speech.errors import SpeechError


@dataclass
class MelConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 200  # 12.5 ms at 16 kHz
    win_length: int = 800  # 50 ms, Hann window
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5  # magnitudes below it are clamped before the log

    def validate(self, source: str) -> None:
        rules = [
            ("sample_rate", self.sample_rate > 0), ("n_mels", self.n_mels > 0),
            ("hop_length", 0 < self.hop_length <= self.win_length),
            ("win_length", self.win_length <= self.n_fft),
            ("fmin", 0 <= self.fmin < self.fmax), ("fmax", self.fmax <= self.sample_rate / 2),
            ("log_floor", self.log_floor > 0),
        ]
        for key, ok in rules:
            if not ok:
                raise SpeechError(f"{source}: {key}={getattr(self, key)} is out of range "
                                  "(need 0 < hop <= win <= n_fft, 0 <= fmin < fmax <= sample_rate/2, log_floor > 0)")


def load_mel_config(path: str | os.PathLike) -> MelConfig:
    cfg = load_config(MelConfig, path)
    cfg.validate(str(path))
    return cfg


def save_mel_config(cfg: MelConfig, path: str | os.PathLike) -> None:
    save_config(cfg, path)


def check_same(found: MelConfig, expected: MelConfig, found_where: str, expected_where: str) -> None:
    """SpeechError naming the first option where two mel configs differ."""
    for f in dataclasses.fields(MelConfig):
        a, b = getattr(found, f.name), getattr(expected, f.name)
        if a != b:
            raise SpeechError(f"{found_where}: mels made with {f.name}={a}, but {expected_where} needs {f.name}={b}; "
                              f"compute the mels again with {expected_where}'s {MEL_CONFIG}")


class MelExtractor:
    """Log-mel frames of waveforms at ``cfg.sample_rate``: (N,) float in [-1, 1] -> (T, n_mels)."""

    def __init__(self, cfg: MelConfig):
        import torchaudio

        self.cfg = cfg
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.fmin, f_max=cfg.fmax, n_mels=cfg.n_mels, power=1.0, center=True, pad_mode="reflect",
            norm="slaney", mel_scale="slaney")

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        if x.numel() <= self.cfg.n_fft // 2:  # reflect padding needs more samples than the pad
            x = torch.nn.functional.pad(x, (0, self.cfg.n_fft // 2 + 1 - x.numel()))
        with torch.no_grad():
            mel = self._mel(x)  # (n_mels, T)
        return torch.log(mel.clamp_min(self.cfg.log_floor)).T.contiguous().numpy()

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.cfg.hop_length


def griffin_lim(log_mel: np.ndarray, cfg: MelConfig, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """The phase-less baseline vocoder: (T, n_mels) log-mel -> (T * hop,) samples, by a
    least-squares inverse of the mel filter bank and Griffin-Lim phase reconstruction."""
    import torchaudio

    mel = torch.from_numpy(np.exp(log_mel.astype(np.float32))).T  # (n_mels, T) magnitudes
    n_stft = cfg.n_fft // 2 + 1
    inverse = torchaudio.transforms.InverseMelScale(n_stft=n_stft, n_mels=cfg.n_mels, sample_rate=cfg.sample_rate,
                                                    f_min=cfg.fmin, f_max=cfg.fmax, norm="slaney", mel_scale="slaney")
    gl = torchaudio.transforms.GriffinLim(n_fft=cfg.n_fft, n_iter=n_iter, win_length=cfg.win_length,
                                          hop_length=cfg.hop_length, power=1.0, rand_init=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        wave = gl(inverse(mel).clamp_min(0.0))
    wave = wave.numpy()
    n = log_mel.shape[0] * cfg.hop_length
    return np.pad(wave, (0, max(0, n - wave.size)))[:n].astype(np.float32)

