"""Tiny TTS training dirs (mels, tokens and durations as speech tts-durations writes them)
without audio, and a tiny acoustic model trained on them, for the synthesis tests."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np

from speech.cli import main
from speech.fileio import write_key_value
from speech.tts import frontend
from speech.tts.mel import MelConfig, save_mel_config
from speech.tts.tts_durations import token_text

SENTENCES = ["The cat sat on the mat.", "A dog ran, and the cat hid.", "Is the mat red?", "The dog sat."]
TINY_MODEL = ["model.embed_dim=16", "model.encoder_hidden=16", "model.encoder_layers=1", "model.duration_channels=16",
              "model.decoder_hidden=16", "model.decoder_layers=1", "model.postnet_layers=2",
              "model.postnet_channels=16", "model.dropout=0.0", "trainer.lr=0.01", "trainer.tensorboard=false",
              "num_threads=1"]


def make_tts_dir(path: Path, sentences: list[str] = SENTENCES, seed: int = 0) -> Path:
    """A data dir of ``sentences``: spoken, the frontend's tokens with durations that depend
    on the token alone (1-6 frames a phone, 0-4 a pause), and log-mels of the default mel
    config that are each frame's token's vector plus noise."""
    rng = np.random.default_rng(seed)
    cfg = MelConfig()
    path.mkdir(parents=True)
    table = rng.normal(-4.0, 1.5, (len(frontend.TOKEN_SYMBOLS), cfg.n_mels)).astype(np.float32)
    spoken, tokens, durations, frames = {}, {}, {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{path / 'mel.ark'},{path / 'feats.scp'}") as writer:
        for k, sentence in enumerate(sentences):
            utt = f"utt{k}"
            toks = frontend.tokens(frontend.analyse(sentence))
            ids = frontend.token_ids(toks)[0]
            # a function of the token, as a speaker's are mostly: learnable from the tokens
            durs = [i * 3 % 5 if t.position == 0 else 1 + i * 7 % 6 for i, t in zip(ids, toks)]
            ids = np.repeat(ids, durs)
            writer(utt, table[ids] + 0.1 * rng.standard_normal((len(ids), cfg.n_mels)).astype(np.float32))
            spoken[utt], tokens[utt] = sentence, token_text(toks)
            durations[utt], frames[utt] = " ".join(map(str, durs)), str(len(ids))
    for name, values in (("spoken", spoken), ("tokens", tokens), ("durations", durations),
                         ("utt2num_frames", frames)):
        write_key_value(path / name, values)
    save_mel_config(cfg, path / "mel.yaml")
    return path


def train_tiny_tts(root: Path, *overrides: str, epochs: int = 30) -> Path:
    """exp dir of a tiny acoustic model trained on :func:`make_tts_dir` dirs under ROOT."""
    train, dev = make_tts_dir(root / "train"), make_tts_dir(root / "dev", SENTENCES[:2], seed=1)
    exp = root / "exp"
    assert main(["train-tts", "--train-dir", str(train), "--dev-dir", str(dev), "--exp-dir", str(exp), "--device",
                 "cpu", *TINY_MODEL, f"trainer.epochs={epochs}", *overrides]) == 0
    return exp
