"""Kaldi data directories with random "fbank" features and digit transcripts: enough for
speech train-asr to run in seconds, without synthesizers or feature extraction."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from speech.config import save_config
from speech.data.datadir import FEATURE_CONFIG
from speech.features import FeatureConfig
from speech.features.storage import ark_writer
from speech.fileio import write_key_value
from speech.text.prepare_lang import prepare_lang

DIGITS = "zero one two three four five six seven eight nine oh".split()
DIM = 20


def make_feature_dir(path: Path, num_utts: int, seed: int) -> Path:
    """A data dir of ``num_utts`` utterances of 40-160 frames x DIM with 1-4 digit words."""
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    path.mkdir(parents=True)
    text, frames, utt2spk = {}, {}, {}
    with ark_writer(path / "feats.ark") as ark:
        for i in range(num_utts):
            utt = f"spk{i % 2}-u{i:03d}"
            text[utt] = " ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 4)))
            n = rng.randint(40, 160)
            ark.write(utt, gen.normal(size=(n, DIM)).astype(np.float32))
            frames[utt], utt2spk[utt] = str(n), utt.split("-")[0]
    write_key_value(path / "feats.scp", ark.entries)
    write_key_value(path / "utt2num_frames", frames)
    write_key_value(path / "text", text)
    write_key_value(path / "utt2spk", utt2spk)
    save_config(FeatureConfig(num_mel_bins=DIM), path / FEATURE_CONFIG)
    return path


def make_asr_dirs(root: Path) -> dict[str, Path]:
    """train (48 utterances), dev (12) and lang dirs under ``root``."""
    dirs = {"train": make_feature_dir(root / "train", 48, 1), "dev": make_feature_dir(root / "dev", 12, 2)}
    prepare_lang(dirs["train"] / "text", root / "lang")
    dirs["lang"] = root / "lang"
    return dirs
