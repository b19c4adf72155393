"""On-the-fly feature augmentation for training: vocal-tract-length warping, time
stretching, additive noise, and SpecAugment's time warp and masks (Park et al., 2019), all
on log-mel features.

The frequency warp rescales the mel axis (as VTLP does, Jaitly & Hinton 2013), which
makes one voice sound like speakers with shorter or longer vocal tracts: the variety that
a corpus of a few synthetic voices lacks. Each utterance draws its parameters from an RNG
seeded by (seed, epoch, utterance index), so a resumed run sees the same augmentation.

Additive noise is applied where features are stored, in the log-mel domain: mel energies
add (exactly in expectation, as speech and noise are uncorrelated), so noisy features are
log(exp(F) + N) for a noise spectrum N at a drawn SNR. The noise is stationary with a
random spectral tilt (white to brown-ish) and the frame-to-frame fluctuation of a
filterbank output; no noise corpus can be had here, and mixing waveforms would mean
re-extracting features every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AugmentConfig:
    """All zeros: no augmentation."""

    freq_warp: float = 0.0  # warp factor drawn from [1 - w, 1 + w]
    time_stretch: float = 0.0  # speed factor drawn from [1 - s, 1 + s]
    freq_masks: int = 0  # number of frequency masks
    freq_mask_width: int = 0  # each masks up to this many bins
    time_masks: int = 0  # number of time masks
    time_mask_ratio: float = 0.0  # each masks up to this share of the frames
    time_warp: int = 0  # SpecAugment time warp: a point moves by up to this many frames
    noise_prob: float = 0.0  # share of utterances that get additive noise
    noise_snr_min: float = 5.0  # dB: SNR drawn uniformly from [min, max]
    noise_snr_max: float = 30.0

    @property
    def enabled(self) -> bool:
        return any((self.freq_warp, self.time_stretch, self.freq_masks, self.time_masks, self.time_warp,
                    self.noise_prob))


def _interpolate(feats: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``feats`` at fractional ``positions`` along ``axis``."""
    n = feats.shape[axis]
    positions = np.clip(positions, 0, n - 1)
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (positions - lo).astype(feats.dtype)
    if axis == 1:
        return feats[:, lo] * (1 - w) + feats[:, hi] * w
    return feats[lo] * (1 - w)[:, None] + feats[hi] * w[:, None]


def warp_frequency(feats: np.ndarray, alpha: float) -> np.ndarray:
    """[T, D] -> [T, D]: bin j takes the value at bin j / alpha (alpha > 1 moves formants up)."""
    return _interpolate(feats, np.arange(feats.shape[1]) / alpha, axis=1)


def stretch_time(feats: np.ndarray, speed: float) -> np.ndarray:
    """[T, D] -> [round(T / speed), D]: faster speech (speed > 1) has fewer frames."""
    t_out = max(1, int(round(feats.shape[0] / speed)))
    return _interpolate(feats, np.arange(t_out) * speed, axis=0)


def warp_time(feats: np.ndarray, center: int, shift: int) -> np.ndarray:
    """[T, D] -> [T, D]: frame ``center`` moves to ``center + shift``, the frames on each side
    stretched or squeezed linearly to fill the gap (SpecAugment's time warp)."""
    t = feats.shape[0]
    target = center + shift
    out_pos = np.arange(t, dtype=np.float64)
    left = out_pos < target
    positions = np.where(left, out_pos * center / max(target, 1),
                         center + (out_pos - target) * (t - 1 - center) / max(t - 1 - target, 1))
    return _interpolate(feats, positions, axis=0)


def add_noise(log_mel: np.ndarray, snr_db: float, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """[T, D] log-mel energies -> [T, D] with stationary noise at ``snr_db`` below the
    utterance's mean energy. ``tilt``: the noise spectrum falls (tilt > 0) or rises by
    exp(tilt) from the lowest to the highest bin."""
    t, d = log_mel.shape
    energy = np.exp(log_mel.astype(np.float64))
    shape = np.exp(-tilt * np.linspace(-0.5, 0.5, d))
    shape /= shape.mean()
    # a mel bin sums several FFT bins of noise: its energy fluctuates like a gamma variable
    fluctuation = rng.gamma(4.0, 0.25, size=(t, d))
    noise = energy.mean() * 10 ** (-snr_db / 10) * shape * fluctuation
    return np.log(energy + noise).astype(np.float32)


class FeatureAugmenter:
    """Applies the configured augmentations to one utterance's features."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0):
        self.cfg = cfg
        self.seed = seed

    def perturb(self, feats: np.ndarray, epoch: int, index: int) -> np.ndarray:
        """Warp, stretch, add noise to and time-warp [T, D] log-mel features (before CMVN)
        -> [T', D] float32."""
        cfg = self.cfg
        rng = np.random.default_rng((self.seed, epoch, index))
        out = feats.astype(np.float32, copy=True)
        if cfg.freq_warp:
            out = warp_frequency(out, rng.uniform(1 - cfg.freq_warp, 1 + cfg.freq_warp))
        if cfg.time_stretch:
            out = stretch_time(out, rng.uniform(1 - cfg.time_stretch, 1 + cfg.time_stretch))
        # streams of their own, so that turning these on leaves the draws above unchanged
        noise_rng = np.random.default_rng((self.seed, epoch, index, 2))
        if cfg.noise_prob and noise_rng.random() < cfg.noise_prob:
            out = add_noise(out, noise_rng.uniform(cfg.noise_snr_min, cfg.noise_snr_max),
                            noise_rng.uniform(-1.0, 3.0), noise_rng)
        warp_rng = np.random.default_rng((self.seed, epoch, index, 3))
        t = out.shape[0]
        if cfg.time_warp and t > 2 * cfg.time_warp + 1:
            center = int(warp_rng.integers(cfg.time_warp, t - cfg.time_warp))
            out = warp_time(out, center, int(warp_rng.integers(-cfg.time_warp, cfg.time_warp + 1)))
        return out

    def mask(self, feats: np.ndarray, epoch: int, index: int) -> np.ndarray:
        """SpecAugment masks on normalised [T, D] features: masked cells become 0, the mean."""
        cfg = self.cfg
        rng = np.random.default_rng((self.seed, epoch, index, 1))
        out = feats.copy()
        t, d = out.shape
        for _ in range(cfg.freq_masks):
            width = int(rng.integers(0, cfg.freq_mask_width + 1))
            start = int(rng.integers(0, max(1, d - width)))
            out[:, start : start + width] = 0.0
        max_t = int(cfg.time_mask_ratio * t)
        for _ in range(cfg.time_masks):
            width = int(rng.integers(0, max_t + 1))
            start = int(rng.integers(0, max(1, t - width)))
            out[start : start + width] = 0.0
        return out
