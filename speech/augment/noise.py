"""Noises to mix into speech (speech.augment.level.add_at_snr): coloured noise, mains hum
and babble made from other utterances.

No noise corpus (MUSAN and the like) can be had here. Coloured noise with a drawn
spectral slope spans fans, traffic rumble and hiss; hum is the mains' 50/60 Hz with its
harmonics; babble, a few other talkers at once, is the noise that confuses a recogniser
most and is made from the data's own other speakers, as MUSAN's babble is made from speech.
"""

from __future__ import annotations

import numpy as np

from speech.augment.level import rms


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """float32 [n] of unit RMS with power spectral density ~ 1 / f**exponent (0 white, 1
    pink, 2 brown): white Gaussian noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = f[1] if len(f) > 1 else 1.0  # no infinite DC gain
    shaped = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return _unit(shaped)


def hum(rng: np.random.Generator, n: int, rate: int, harmonics: int = 5) -> np.ndarray:
    """float32 [n] of unit RMS: 50 or 60 Hz mains hum, ``harmonics`` partials of drawn
    amplitudes (falling with order) and phases."""
    base = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / rate
    y = np.zeros(n)
    for k in range(1, harmonics + 1):
        if base * k < rate / 2:
            y += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
    return _unit(y)


def babble(rng: np.random.Generator, n: int, talkers: list[np.ndarray]) -> np.ndarray:
    """float32 [n] of unit RMS: ``talkers`` (other utterances' samples) each looped to n
    samples from a drawn offset and levelled to one RMS, summed."""
    y = np.zeros(n)
    for talker in talkers:
        if not len(talker):
            continue
        looped = np.resize(np.roll(talker, -int(rng.integers(len(talker)))), n).astype(np.float64)
        y += _unit(looped)
    return _unit(y)


def _unit(y: np.ndarray) -> np.ndarray:
    return (y / max(rms(y), 1e-12)).astype(np.float32)
