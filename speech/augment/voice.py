"""Pseudo-speakers: a voice re-synthesised by the WORLD vocoder (pyworld) with its pitch
scaled and its spectral envelope warped along frequency.

Speed perturbation changes pitch, formants and tempo together, and feature-level warping
(VTLP) moves formants but keeps the source's pitch contour and harmonics; re-synthesis
changes the two things that tell speakers apart most, F0 and vocal-tract length, apart
and with the timing kept, so that one voice yields speakers of other heights and sexes.
A warp ``alpha`` > 1 moves every formant up by that factor (a shorter vocal tract: female
and child voices), < 1 down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from speech.augment.level import fit_length, match_level

# WORLD's analysis step; 5 ms is its default and what its re-synthesis is tuned for
FRAME_PERIOD_MS = 5.0


@dataclass(frozen=True)
class PseudoSpeaker:
    f0_scale: float  # F0 multiplied by this (1.26: four semitones up)
    warp: float  # spectral envelope: new(f) = old(f / warp), formants times ``warp``


def warp_envelope(envelope: np.ndarray, warp: float) -> np.ndarray:
    """[T, F] power envelope (bins 0..F-1 up to Nyquist) with its frequency axis scaled by
    ``warp``: bin k takes the value at bin k / warp (linear interpolation; above the old
    top bin, its value)."""
    bins = envelope.shape[1]
    source = np.minimum(np.arange(bins) / warp, bins - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, bins - 1)
    frac = (source - low)[None, :]
    # pyworld.synthesize takes C-contiguous arrays only
    return np.ascontiguousarray(envelope[:, low] * (1 - frac) + envelope[:, high] * frac)


def resynthesize(samples: np.ndarray, rate: int, speaker: PseudoSpeaker) -> np.ndarray:
    """``samples`` [N] float32 spoken by ``speaker``: float32 [N] at the input's RMS level.

    F0 by DIO refined by StoneMask (several times faster than Harvest, and the F0 is scaled
    anyway), envelope by CheapTrick, aperiodicity by D4C.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyworld 0.3.5 imports the deprecated pkg_resources
        import pyworld

    x = samples.astype(np.float64)
    f0, times = pyworld.dio(x, rate, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, rate)
    envelope = pyworld.cheaptrick(x, f0, times, rate)
    aperiodicity = pyworld.d4c(x, f0, times, rate)
    y = pyworld.synthesize(f0 * speaker.f0_scale, warp_envelope(envelope, speaker.warp), aperiodicity, rate,
                           frame_period=FRAME_PERIOD_MS)
    return match_level(fit_length(y, len(x)), samples)

