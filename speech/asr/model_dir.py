"""A trained ASR model as a directory that loads on its own (``kind: asr``, see
:mod:`speech.model_dir` for the contract every model dir follows).

    config.yaml        kind: asr, then the full resolved AsrConfig (model sizes, features,
                       CMVN mode, training)
    model.safetensors  weights of the best epoch
    tokens.txt         the token table the output layer indexes
    tokenizer.yaml     the output unit (char, bpe, phone), with bpe.model or the phone
                       lexicon.txt when the unit needs them (see speech.text.tokenizer)
    cmvn_global.ark    training-set CMVN statistics (Kaldi matrix), when cmvn=global
    decoding.yaml      optional: the search that gave the recipe's best dev WER (lexicon,
                       LM and tuned weights, or graph), written by ``speech pick-decoding``;
                       ``speech transcribe`` decodes with it unless told otherwise
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speech.asr.frontend import Frontend
from speech.asr.model import BlstmCtc, BlstmCtcConfig
from speech.data.datadir import GLOBAL_CMVN
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.features.augment import AugmentConfig
from speech.features.cmvn import read_stats, write_stats
from speech.fileio import atomic_write
from speech.model_dir import CONFIG, load_model, save_model_config
from speech.text.tokenizer import TOKENS, Tokenizer, load_tokenizer
from speech.train import TrainerConfig

KIND = "asr"
CMVN = GLOBAL_CMVN


@dataclass
class AsrConfig:
    """Everything that defines an ASR experiment; saved resolved into the model directory."""

    model: BlstmCtcConfig = field(default_factory=BlstmCtcConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)  # filled from the data dir
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training only
    cmvn: str = "global"  # global | utterance (see speech.asr.frontend)
    max_frames: int = 20000  # padded input frames per batch
    max_batch: int = 64  # utterances per batch at most
    num_threads: int = 0  # torch CPU threads; 0 keeps torch's default


def build_model(cfg: AsrConfig) -> BlstmCtc:
    return BlstmCtc(cfg.model)


def write_model_dir(out_dir: Path, cfg: AsrConfig, tokenizer: Tokenizer, lang_dir: Path,
                    stats: np.ndarray | None) -> None:
    """Everything of the model directory except the weights (written by
    :func:`speech.model_dir.save_weights`); the tokenizer's files are copied from ``lang_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model_config(out_dir, KIND, cfg)
    for src in tokenizer.files(lang_dir):
        if src.is_file():  # a character lang dir of an older version has no tokenizer.yaml
            with atomic_write(out_dir / src.name, "wb") as f:
                f.write(src.read_bytes())
    if stats is not None:
        write_stats(out_dir / CMVN, stats)


@dataclass
class LoadedModel:
    model: BlstmCtc
    cfg: AsrConfig
    tokenizer: Tokenizer
    frontend: Frontend


def load_model_dir(model_dir: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model directory of kind asr for decoding (eval mode, on ``device``)."""
    model_dir = Path(model_dir)
    cfg, model = load_model(model_dir, KIND)
    tokenizer = load_tokenizer(model_dir)
    if len(tokenizer.table) != cfg.model.vocab_size:
        raise SpeechError(f"{model_dir / TOKENS}: {len(tokenizer.table)} tokens, but the model outputs "
                          f"{cfg.model.vocab_size} ({model_dir / CONFIG}); copy the tokens.txt it was trained with")
    stats = read_stats(model_dir / CMVN) if (model_dir / CMVN).is_file() else None
    frontend = Frontend(cfg.features, cfg.cmvn, stats)
    return LoadedModel(model.to(device), cfg, tokenizer, frontend)
