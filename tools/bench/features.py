"""Benchmark 80-dim fbank extraction: this project's extractor against the libraries it could use.

Usage: .venv/bin/python tools/bench/features.py [--seconds 60] [--repeats 5]

Every extractor runs single-threaded on the same audio (real speech from pocketsphinx's test
data when installed, else synthetic speech-like audio), after a warm-up call (librosa's
first call compiles with numba). Throughput is "x real time per core": audio seconds over
the best of ``--repeats`` timed runs. Ratios are against the fastest reference library.
"max |diff|" is against torchaudio.compliance.kaldi.fbank; librosa is not Kaldi-compatible
(no pre-emphasis, DC removal or povey window, other mel scale), so its difference only
shows that. "import s" / "import MB" are the time and memory a fresh Python process spends
importing what the extractor needs, which each job of a feature stage pays once.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/torch load their thread pools: the figures are
# per core, and feature jobs run one per core.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import glob  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

SAMPLE_RATE = 16000
NUM_MEL_BINS = 80
SPEECH_GLOB = "/usr/share/pocketsphinx/test/data/librivox/*.wav"


def speech_audio(seconds: float) -> tuple[np.ndarray, str]:
    """float32 [seconds * 16000] in [-1, 1], and where it came from."""
    import soundfile as sf

    files = sorted(glob.glob(SPEECH_GLOB))
    parts = [sf.read(f, dtype="float32")[0] for f in files if sf.info(f).samplerate == SAMPLE_RATE]
    n = int(seconds * SAMPLE_RATE)
    if parts:
        audio = np.concatenate(parts)
        return np.tile(audio, n // len(audio) + 1)[:n], f"{len(parts)} pocketsphinx librivox files, tiled"
    return synthetic_speech(n), "synthetic speech-like audio"


def synthetic_speech(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n]: glottal pulse trains with a drifting pitch through moving formant
    resonators, 0.1-0.6 s syllables separated by short pauses, plus a little noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.float64)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.1, 0.6) * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = np.cumsum(f0) / SAMPLE_RATE
        source = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        voiced = source + 0.02 * rng.standard_normal(length)
        for formant, bandwidth in ((rng.uniform(300, 900), 80), (rng.uniform(900, 2500), 120), (2800, 200)):
            r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
            theta = 2 * np.pi * formant / SAMPLE_RATE
            voiced = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], voiced)
        envelope = np.hanning(length)
        seg = voiced * envelope
        end = min(n, pos + length)
        out[pos:end] = seg[: end - pos]
        pos = end + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    out += 1e-3 * rng.standard_normal(n)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def project_extractor() -> Callable[[np.ndarray], np.ndarray]:
    from speech.features import FeatureConfig, make_extractor

    return make_extractor(FeatureConfig(type="fbank", num_mel_bins=NUM_MEL_BINS, sample_rate=SAMPLE_RATE))


def knf_extractor() -> Callable[[np.ndarray], np.ndarray]:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.mel_opts.num_bins = NUM_MEL_BINS

    def extract(x: np.ndarray) -> np.ndarray:
        fbank = knf.OnlineFbank(opts)
        fbank.accept_waveform(SAMPLE_RATE, x * 32768)
        fbank.input_finished()
        return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])

    return extract


def torchaudio_extractor() -> Callable[[np.ndarray], np.ndarray]:
    import torch
    import torchaudio.compliance.kaldi as kaldi

    torch.set_num_threads(1)

    def extract(x: np.ndarray) -> np.ndarray:
        wave = torch.from_numpy(x * 32768).unsqueeze(0)
        return kaldi.fbank(wave, num_mel_bins=NUM_MEL_BINS, dither=0.0, energy_floor=0.0,
                           sample_frequency=SAMPLE_RATE).numpy()

    return extract


def librosa_extractor() -> Callable[[np.ndarray], np.ndarray]:
    import librosa

    def extract(x: np.ndarray) -> np.ndarray:
        # Kaldi-like framing (25 ms window in a 512-point FFT, 10 ms hop, no centring); the
        # end is padded so the 512-sample frames count as Kaldi's 400-sample ones do.
        x = np.pad(x * 32768, (0, 512 - 400))
        mel = librosa.feature.melspectrogram(
            y=x, sr=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160, window="hamming",
            center=False, n_mels=NUM_MEL_BINS, fmin=20.0, power=2.0, htk=True, norm=None,
        )
        return np.log(np.maximum(mel, np.finfo(np.float32).eps)).T

    return extract


EXTRACTORS: list[tuple[str, Callable[[], Callable], str, bool]] = [
    # name, factory, import statement for the cold-import timing, is a reference library
    ("speech (this project)", project_extractor, "import speech.features", False),
    ("kaldi-native-fbank", knf_extractor, "import kaldi_native_fbank", True),
    ("torchaudio.compliance.kaldi", torchaudio_extractor, "import torchaudio.compliance.kaldi", True),
    ("librosa melspectrogram+log", librosa_extractor, "import librosa; librosa.feature.melspectrogram", True),
]


def import_cost(statement: str) -> tuple[float, float]:
    """(seconds, MB of RSS) a fresh interpreter adds by running ``statement``; the time is
    the best of 2 runs, so with the files in the page cache."""
    # RSS from /proc: ru_maxrss would carry over this (large) process's peak through fork.
    code = (
        "import time\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1])\n"
        f"r = rss(); t = time.perf_counter(); {statement}; t = time.perf_counter() - t\n"
        "import os; print(t, (rss() - r) * os.sysconf('SC_PAGE_SIZE') / 2**20)\n"
    )
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        seconds, megabytes = map(float, out.stdout.split())
        runs.append((seconds, megabytes))
    return min(runs)


def x_real_time(fn: Callable[[np.ndarray], np.ndarray], clips: list[np.ndarray], repeats: int) -> float:
    """Audio seconds per second of computing ``fn`` on each clip in turn, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for clip in clips:
            fn(clip)
        best = min(best, time.perf_counter() - start)
    return sum(len(c) for c in clips) / SAMPLE_RATE / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length (default 60)")
    parser.add_argument("--utt-seconds", type=float, default=2.0,
                        help="also time the audio cut into utterances this long, one call each, as a stage does")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per extractor; the best counts")
    args = parser.parse_args(argv)

    audio, source = speech_audio(args.seconds)
    n = int(args.utt_seconds * SAMPLE_RATE)
    utts = [audio[i : i + n] for i in range(0, len(audio) - n + 1, n)]
    print(f"audio: {len(audio) / SAMPLE_RATE:.1f} s at {SAMPLE_RATE} Hz ({source}); {NUM_MEL_BINS}-dim fbank, "
          f"1 thread, best of {args.repeats}; x real time for one call on all of it and for "
          f"{len(utts)} calls on {args.utt_seconds:g} s utterances")

    rows = []
    for name, factory, statement, is_reference in EXTRACTORS:
        fn = factory()
        fn(audio[:SAMPLE_RATE])  # warm-up: numba compilation, FFT plans, lazy imports
        feats = np.asarray(fn(audio), dtype=np.float32)
        xrt_long = x_real_time(fn, [audio], args.repeats)
        xrt_utts = x_real_time(fn, utts, args.repeats)
        rows.append((name, is_reference, xrt_long, xrt_utts, feats, *import_cost(statement)))

    by_name = {row[0]: row for row in rows}
    reference = by_name["torchaudio.compliance.kaldi"][4]
    fastest_long = max(row[2] for row in rows if row[1])
    fastest_utts = max(row[3] for row in rows if row[1])
    print(f"\n{'extractor':<28} {'xRT long':>9} {'/fastest':>8} {'xRT utts':>9} {'/fastest':>8} {'frames':>7} "
          f"{'max|diff| vs ta':>15} {'import s':>8} {'import MB':>9}")
    for name, _, xrt_long, xrt_utts, feats, imp_s, imp_mb in rows:
        diff = float(np.abs(feats - reference).max()) if feats.shape == reference.shape else float("nan")
        print(f"{name:<28} {xrt_long:>9.0f} {xrt_long / fastest_long:>7.2f}x {xrt_utts:>9.0f} "
              f"{xrt_utts / fastest_utts:>7.2f}x {feats.shape[0]:>7} {diff:>15.2e} {imp_s:>8.3f} {imp_mb:>9.0f}")

    # A feature job pays its imports once and then extracts its share of the audio: below
    # this much audio per job the library that imports faster finishes first.
    knf, ta = by_name["kaldi-native-fbank"], by_name["torchaudio.compliance.kaldi"]
    (fast, slow) = (ta, knf) if ta[3] > knf[3] else (knf, ta)
    extra_import = fast[5] - slow[5]
    if extra_import > 0:
        break_even = extra_import / (1 / slow[3] - 1 / fast[3])
        print(f"\n{fast[0]} computes faster but imports {extra_import:.2f} s slower: it finishes a job "
              f"first only above {break_even / 60:.0f} min of audio per job ({args.utt_seconds:g} s utterances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
