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


def make_feature_dir(path: Path, num_utts: int, seed: int, use_energy: bool = False) -> Path:
    """A data dir of ``num_utts`` utterances of 40-160 frames x DIM (DIM + 1 with
    ``use_energy``, as Kaldi's fbank with energy) with 1-4 digit words."""
    dim = DIM + use_energy
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    path.mkdir(parents=True)
    text, frames, utt2spk = {}, {}, {}
    with ark_writer(path / "feats.ark") as ark:
        for i in range(num_utts):
            utt = f"spk{i % 2}-u{i:03d}"
            text[utt] = " ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 4)))
            n = rng.randint(40, 160)
            ark.write(utt, gen.normal(size=(n, dim)).astype(np.float32))
            frames[utt], utt2spk[utt] = str(n), utt.split("-")[0]
    write_key_value(path / "feats.scp", ark.entries)
    write_key_value(path / "utt2num_frames", frames)
    write_key_value(path / "text", text)
    write_key_value(path / "utt2spk", utt2spk)
    # a data dir names its audio; these features were made from none, and nothing reads it
    write_key_value(path / "wav.scp", {utt: str(path / "wav" / f"{utt}.wav") for utt in utt2spk})
    save_config(FeatureConfig(num_mel_bins=DIM, use_energy=use_energy), path / FEATURE_CONFIG)
    return path


def make_asr_dirs(root: Path, use_energy: bool = False) -> dict[str, Path]:
    """train (48 utterances), dev (12) and lang dirs under ``root``."""
    dirs = {"train": make_feature_dir(root / "train", 48, 1, use_energy),
            "dev": make_feature_dir(root / "dev", 12, 2, use_energy)}
    prepare_lang(dirs["train"] / "text", root / "lang")
    dirs["lang"] = root / "lang"
    return dirs


TINY_ASR = ["--device", "cpu", "model.hidden_size=16", "model.num_layers=1", "trainer.epochs=1",
            "trainer.tensorboard=false", "cmvn=utterance"]


def train_tiny_asr(dirs: dict[str, Path], exp: Path, *overrides: str) -> int:
    """speech train-asr's exit code for a one-epoch, 16-cell model on ``make_asr_dirs``."""
    from speech.cli import main

    return main(["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]), "--lang-dir",
                 str(dirs["lang"]), "--exp-dir", str(exp), *TINY_ASR, *overrides])
