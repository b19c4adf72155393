"""Channels: the telephone band (8 kHz, 300-3400 Hz, G.711 mu-law) and lossy codecs (MP3,
Opus) at drawn bit rates, through libsndfile (soundfile).

Recordings people transcribe have been through phones, voice chat and compressed files;
a recogniser trained on clean 16 kHz audio has never heard their band limits and codec
artefacts. Every output is back at the input's rate and length, the codec's delay removed.
"""

from __future__ import annotations

import io

import numpy as np

from speech.augment.level import fit_length, match_level

CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}
# libsndfile's LAME refuses compression 1 at 16 kHz; measured at 16 kHz, compression 0 to
# the highest allowed: MP3 56 to 29 kbit/s, Opus 270 to 12 kbit/s
MAX_COMPRESSION = {"mp3": 0.9, "opus": 1.0}
TELEPHONE_RATE = 8000
MU = 255.0
# the largest codec delay searched for when realigning (samples; MP3's is about 1100)
MAX_DELAY = 4000


def telephone(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` [N] as a landline carries them: down to 8 kHz, 300-3400 Hz band-pass
    (zero phase), 8-bit mu-law, and back to ``rate``: float32 [N]."""
    import soxr
    from scipy.signal import butter, sosfiltfilt

    narrow = soxr.resample(samples.astype(np.float32), rate, TELEPHONE_RATE)
    narrow = sosfiltfilt(butter(4, [300, 3400], btype="bandpass", fs=TELEPHONE_RATE, output="sos"), narrow)
    peak = max(float(np.max(np.abs(narrow))), 1e-9)
    companded = np.sign(narrow) * np.log1p(MU * np.abs(narrow / peak)) / np.log1p(MU)
    quantised = np.round(companded * 127) / 127
    narrow = peak * np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU
    wide = soxr.resample(narrow.astype(np.float32), TELEPHONE_RATE, rate)
    return match_level(fit_length(wide, len(samples)), samples)


def codec(samples: np.ndarray, rate: int, name: str, compression: float) -> np.ndarray:
    """``samples`` [N] encoded by codec ``name`` (mp3, opus) at libsndfile's compression
    level ``compression`` (0: the highest bit rate, 1: the lowest; capped at
    MAX_COMPRESSION) and decoded: float32 [N], realigned to the input (:func:`realign`)."""
    import soundfile as sf

    fmt, subtype = CODECS[name]
    buffer = io.BytesIO()
    peak = max(float(np.max(np.abs(samples))), 1e-9)
    scale = min(1.0, 0.9 / peak)  # the encoders clip at full scale
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format=fmt, subtype=subtype,
                      compression_level=min(float(compression), MAX_COMPRESSION[name])) as f:
        f.write(samples * scale)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return (realign(decoded, samples) / scale).astype(np.float32)


def realign(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``y`` shifted by the lag (0..MAX_DELAY samples) at which it best matches
    ``reference`` (cross-correlation), cut or zero-padded to the reference's length."""
    from scipy.signal import correlate

    n = min(len(reference), len(y))
    if n == 0:
        return np.zeros(len(reference), dtype=np.float32)
    corr = correlate(fit_length(y, n + MAX_DELAY), reference[:n], mode="valid", method="fft")
    lag = int(np.argmax(corr[: MAX_DELAY + 1]))
    return fit_length(y[lag:], len(reference))

