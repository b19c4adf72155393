"""Tiny data dirs of audio, and of TTS mels (speech compute-mel), for the synthesis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from speech.cli import main

MEL_YAML = Path(__file__).parents[2] / "conf" / "tts" / "mel.yaml"
RATE = 22050  # the joe corpus's rate: the stage resamples to the config's 16 kHz
UTTS = {"spk1-a": ("spk1", 0.52), "spk1-b": ("spk1", 0.31), "spk2-a": ("spk2", 0.77)}


def make_data_dir(root: Path) -> Path:
    """3 utterances (2 speakers) of noisy harmonics, 16-bit wavs at 22.05 kHz."""
    data, wavs = root / "data", root / "wavs"
    data.mkdir(parents=True)
    wavs.mkdir()
    rng = np.random.default_rng(0)
    for utt, (_, seconds) in UTTS.items():
        t = np.arange(int(seconds * RATE)) / RATE
        x = 0.3 * np.sin(2 * np.pi * 150 * t) * np.sin(2 * np.pi * 3 * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(wavs / f"{utt}.wav", x, RATE, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"{u} {wavs / u}.wav\n" for u in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _) in UTTS.items()))
    (data / "spk2utt").write_text("spk1 spk1-a spk1-b\nspk2 spk2-a\n")
    return data


def make_mel_dir(root: Path, *overrides: str) -> Path:
    """:func:`make_data_dir` with its mels computed (``overrides`` of conf/tts/mel.yaml)."""
    data = make_data_dir(root)
    assert main(["compute-mel", str(data), "--config", str(MEL_YAML), "--feat-dir", str(root / "mel"),
                 "--log-dir", str(root / "log"), *overrides]) == 0
    return data
