"""On-the-fly feature augmentation for training: vocal-tract-length warping, time
stretching, and SpecAugment masks (Park et al., 2019), all on log-mel features.

The frequency warp rescales the mel axis (as VTLP does, Jaitly & Hinton 2013), which
makes one voice sound like speakers with shorter or longer vocal tracts: the variety that
a corpus of a few synthetic voices lacks. Each utterance draws its parameters from an RNG
seeded by (seed, epoch, utterance index), so a resumed run sees the same augmentation.
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

    @property
    def enabled(self) -> bool:
        return any((self.freq_warp, self.time_stretch, self.freq_masks, self.time_masks))


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


class FeatureAugmenter:
    """Applies the configured augmentations to one utterance's features."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0):
        self.cfg = cfg
        self.seed = seed

    def perturb(self, feats: np.ndarray, epoch: int, index: int) -> np.ndarray:
        """Warp and stretch [T, D] log-mel features (before CMVN) -> [T', D] float32."""
        cfg = self.cfg
        rng = np.random.default_rng((self.seed, epoch, index))
        out = feats.astype(np.float32, copy=True)
        if cfg.freq_warp:
            out = warp_frequency(out, rng.uniform(1 - cfg.freq_warp, 1 + cfg.freq_warp))
        if cfg.time_stretch:
            out = stretch_time(out, rng.uniform(1 - cfg.time_stretch, 1 + cfg.time_stretch))
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
