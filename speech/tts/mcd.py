"""Mel-cepstral distortion (MCD, dB) between a recording and a synthesized waveform.

Both waveforms are taken at one rate (16 kHz, the rate of the synthesis half and of its
judges; callers resample). Each is cut into Hamming-windowed frames of 32 ms every 5 ms and
analysed by SPTK's mel-cepstral analysis (``pysptk.mcep``: order 24, all-pass constant
0.41, the value ``pysptk.util.mcepalpha(16000)`` gives as the best match of the mel scale
at 16 kHz), as ESPnet's ``evaluate_mcd.py`` does. Silent frames are dropped (see
:data:`McdConfig.silence_db`), the two sequences of c1..c24 (c0, the frame's energy, left
out: a gain difference is not a spectral distortion) are aligned by dynamic time warping
(``librosa.sequence.dtw``, Euclidean cost), and the distortion of every aligned pair

    MCD = 10 / ln(10) * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)

is averaged over the warping path.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

import numpy as np

# 10 / ln(10) * sqrt(2): mel-cepstral distance in natural-log units -> dB
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)


@dataclass(frozen=True)
class McdConfig:
    sample_rate: int = 16000
    frame_length: int = 512  # 32 ms
    hop_length: int = 80  # 5 ms
    order: int = 24  # c0..c24; c0 is left out of the distance
    alpha: float = 0.41  # all-pass constant; pysptk.util.mcepalpha(16000)
    # A frame more than silence_db below the loudest frame of its own waveform is silence
    # and is dropped before the alignment: the mel-cepstrum of a noise floor says nothing
    # about the voice, yet recording noise vs a vocoder's near-zero output would dominate
    # the mean. Thresholding each waveform against its own maximum keeps a quieter (or
    # louder) synthesis from losing (or keeping) speech frames, and an output that is
    # silence throughout keeps all its frames (all are within silence_db of its maximum)
    # and so scores as far from speech, as it should.
    silence_db: float = 40.0


def _pysptk():
    """pysptk, imported despite its ``import pkg_resources`` (pysptk 1.0.1, the latest
    release, still has it: r9y9/pysptk#109), which setuptools 81+ no longer ships.
    pkg_resources serves it only ``resource_filename`` for its example audio, so a stand-in
    holding that is registered for the import alone, then removed, so that no other
    library later mistakes it for the real one."""
    try:
        return importlib.import_module("pysptk")
    except ModuleNotFoundError as e:
        if e.name != "pkg_resources":
            raise
    from importlib.resources import files

    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_filename = lambda package, name: str(files(package) / name)  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    try:
        for name in [m for m in sys.modules if m == "pysptk" or m.startswith("pysptk.")]:
            del sys.modules[name]  # the half-imported package from the failed attempt
        return importlib.import_module("pysptk")
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


def mel_cepstrum(samples: np.ndarray, cfg: McdConfig = McdConfig()) -> np.ndarray:
    """Mel-cepstra of the non-silent frames of ``samples`` (float [N] at ``cfg.sample_rate``).

    Returns float64 [T, order + 1] (c0 first), T >= 1: frames centred every hop, the signal
    zero-padded by half a frame at both ends (a waveform shorter than a frame is one frame).
    """
    pysptk = _pysptk()
    x = np.asarray(samples, dtype=np.float64)
    half = cfg.frame_length // 2
    x = np.pad(x, (half, half + max(0, cfg.frame_length - len(x) - 2 * half)))
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.frame_length)[:: cfg.hop_length]
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    frames = frames[energy_db >= energy_db.max() - cfg.silence_db] * np.hamming(cfg.frame_length)
    # etype=1: eps is added to the periodogram, so that digital silence and pure tones
    # (periodograms with zeros) are analysed instead of failing. 1e-10 lies below 16-bit
    # audio's quantisation noise, so it changes no real frame: measured on a LibriVox
    # clip, scaling it by 0.1 moved its MCD by 0.04 dB with 1e-10, by 3.9 dB with ESPnet's 1e-6.
    return np.stack([pysptk.mcep(f, cfg.order, cfg.alpha, etype=1, eps=1e-10) for f in frames])


def mcd_of_cepstra(ref: np.ndarray, syn: np.ndarray) -> float:
    """MCD in dB of two mel-cepstrum sequences [T1, D] and [T2, D] (c0 in column 0, left
    out), DTW-aligned; the mean over the warping path."""
    from librosa.sequence import dtw

    a, b = np.ascontiguousarray(ref[:, 1:].T), np.ascontiguousarray(syn[:, 1:].T)  # [D-1, T]
    _, path = dtw(X=a, Y=b, metric="euclidean")  # path: [L, 2] (i, j) pairs, end to start
    dist = np.linalg.norm(a[:, path[:, 0]] - b[:, path[:, 1]], axis=0)
    return float(_MCD_SCALE * dist.mean())


def mel_cepstral_distortion(ref: np.ndarray, syn: np.ndarray, cfg: McdConfig = McdConfig()) -> float:
    """MCD in dB of a synthesized waveform ``syn`` against the recording ``ref`` (both float
    [N] at ``cfg.sample_rate``): 0 for identical waveforms, larger the further apart."""
    return mcd_of_cepstra(mel_cepstrum(ref, cfg), mel_cepstrum(syn, cfg))
