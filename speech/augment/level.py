"""Signal levels: RMS, matching a reference's level, mixing noise at an SNR."""

from __future__ import annotations

import numpy as np


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def match_level(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``y`` scaled to ``reference``'s RMS, as float32 (silence stays silence)."""
    level = rms(y)
    return (y * (rms(reference) / level if level > 0 else 0.0)).astype(np.float32)


def add_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` [N] + ``noise`` [N] scaled so that 10 log10(P_signal / P_noise) is
    ``snr_db`` (powers over the whole utterance, pauses included, as Kaldi's and ESPnet's
    noise mixing measure it): float32 [N]. A silent signal or noise is returned unchanged."""
    p_signal, p_noise = rms(signal) ** 2, rms(noise) ** 2
    if p_signal == 0 or p_noise == 0:
        return signal.astype(np.float32)
    gain = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return (signal + gain * noise).astype(np.float32)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded at its end to ``n`` samples, as float32."""
    return np.pad(y[:n], (0, max(0, n - len(y)))).astype(np.float32)
