"""Kaldi-compatible log-mel filterbank and MFCC extraction.

The features are computed by kaldi-native-fbank (a C++ port of Kaldi's ``compute-fbank-feats``
/ ``compute-mfcc-feats``), not by ``torchaudio.compliance.kaldi``, because of what
``tools/bench/features.py`` measured (60 s of speech, 80-dim fbank, one thread, 2-core AMD
EPYC shared with other work): both give the same features (max abs difference 1.6e-3 in
log-mel), and torchaudio computes faster once loaded (2100-3600x real time
against ~850x), but a process needs 1.0 s (warm page cache; 3-4 s cold) and ~500 MB of RSS to
import torch against 3 ms and 2 MB for kaldi-native-fbank. Each of a stage's ``--nj`` jobs
pays that once, so torchaudio finishes a job first only above ~20 min of audio per job,
saving at most ~3 s of CPU per hour of audio beyond that, while every smaller job (recipes
of this size, tests, re-runs) starts faster and ``--nj`` jobs on a laptop do not need
0.5 GB each. This module therefore must not import torch.

As in Kaldi, the waveform is scaled to the int16 range before framing, so ``dither`` and
``energy_floor`` are in the units Kaldi's options use (Kaldi's default dither is 1.0).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import kaldi_native_fbank as knf
import numpy as np

from speech.errors import SpeechError

FEATURE_TYPES = ("fbank", "mfcc")
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman")

# Kaldi reads 16-bit PCM as float sample values in [-32768, 32767].
_INT16_SCALE = 32768.0


@dataclass
class FeatureConfig:
    """Options of Kaldi's compute-fbank-feats / compute-mfcc-feats (same names where possible).

    ``type`` picks the feature: ``fbank`` gives ``num_mel_bins`` (+1 with ``use_energy``)
    log-mel energies per frame, ``mfcc`` gives ``num_ceps`` cepstra (C0 replaced by the
    log energy with ``use_energy``, as Kaldi does).
    """

    type: str = "fbank"
    sample_rate: int = 16000
    num_mel_bins: int = 80
    num_ceps: int = 13
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0  # std of Gaussian noise in int16 units; Kaldi's default is 1.0
    preemphasis: float = 0.97
    window: str = "povey"
    remove_dc_offset: bool = True
    round_to_power_of_two: bool = True
    snip_edges: bool = True  # True: only frames that fit in the signal (Kaldi's default)
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from the Nyquist frequency
    use_energy: bool = False
    raw_energy: bool = True  # energy before preemphasis and windowing
    energy_floor: float = 0.0
    cepstral_lifter: float = 22.0  # mfcc only


class KaldiFeatureExtractor:
    """Callable: ``samples`` float32 [N] in [-1, 1] at ``cfg.sample_rate`` -> float32 [T, dim].

    ``T`` is ``1 + (N - frame_length) // frame_shift`` (0 when N < frame_length) with
    ``snip_edges``, else ``(N + frame_shift // 2) // frame_shift``, in samples, as in Kaldi.
    """

    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self._opts = _knf_options(cfg)
        self._online = knf.OnlineFbank if cfg.type == "fbank" else knf.OnlineMfcc
        try:
            self.dim = int(self._online(self._opts).dim)
        except ValueError as e:  # kaldi-native-fbank checks the mel banks against the FFT size
            raise SpeechError(f"feature config {_short(cfg)}: {e}") from None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples of shape [N], got {samples.shape}")
        wave = samples * np.float32(_INT16_SCALE)
        if self.cfg.dither > 0:
            wave = wave + self._dither_noise(samples)
        computer = self._online(self._opts)
        computer.accept_waveform(self.cfg.sample_rate, wave)
        computer.input_finished()
        num_frames = computer.num_frames_ready
        if num_frames == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([computer.get_frame(i) for i in range(num_frames)]).astype(np.float32, copy=False)

    def _dither_noise(self, samples: np.ndarray) -> np.ndarray:
        # Kaldi draws the noise per frame from a generator shared by the whole job, so the
        # features depend on the job split. Seeding by the audio itself keeps them
        # reproducible and the same for any --nj.
        rng = np.random.default_rng(zlib.crc32(samples.tobytes()))
        return (self.cfg.dither * rng.standard_normal(samples.shape[0])).astype(np.float32)


def make_extractor(cfg: FeatureConfig) -> KaldiFeatureExtractor:
    """Build the extractor for ``cfg``; raises SpeechError for options Kaldi would reject."""
    return KaldiFeatureExtractor(cfg)


def _short(cfg: FeatureConfig) -> str:
    return f"(type={cfg.type}, sample_rate={cfg.sample_rate}, num_mel_bins={cfg.num_mel_bins})"


def _knf_options(cfg: FeatureConfig):
    if cfg.type not in FEATURE_TYPES:
        raise SpeechError(f"feature type '{cfg.type}' is not one of {', '.join(FEATURE_TYPES)}")
    if cfg.window not in WINDOW_TYPES:
        raise SpeechError(f"feature window '{cfg.window}' is not one of {', '.join(WINDOW_TYPES)}")
    if cfg.sample_rate <= 0 or cfg.frame_shift_ms <= 0 or cfg.frame_length_ms < cfg.frame_shift_ms:
        raise SpeechError(
            f"feature config {_short(cfg)}: need sample_rate > 0 and "
            f"frame_length_ms ({cfg.frame_length_ms}) >= frame_shift_ms ({cfg.frame_shift_ms}) > 0"
        )
    if cfg.type == "mfcc" and not 0 < cfg.num_ceps <= cfg.num_mel_bins:
        raise SpeechError(f"mfcc: num_ceps ({cfg.num_ceps}) must be in 1..num_mel_bins ({cfg.num_mel_bins})")

    opts = knf.FbankOptions() if cfg.type == "fbank" else knf.MfccOptions()
    frame = opts.frame_opts
    frame.samp_freq = float(cfg.sample_rate)
    frame.frame_length_ms = cfg.frame_length_ms
    frame.frame_shift_ms = cfg.frame_shift_ms
    frame.dither = 0.0  # added in KaldiFeatureExtractor, reproducibly
    frame.preemph_coeff = cfg.preemphasis
    frame.window_type = cfg.window
    frame.remove_dc_offset = cfg.remove_dc_offset
    frame.round_to_power_of_two = cfg.round_to_power_of_two
    frame.snip_edges = cfg.snip_edges
    mel = opts.mel_opts
    mel.num_bins = cfg.num_mel_bins
    mel.low_freq = cfg.low_freq
    mel.high_freq = cfg.high_freq
    opts.use_energy = cfg.use_energy
    opts.raw_energy = cfg.raw_energy
    opts.energy_floor = cfg.energy_floor
    if cfg.type == "mfcc":
        opts.num_ceps = cfg.num_ceps
        opts.cepstral_lifter = cfg.cepstral_lifter
    return opts
