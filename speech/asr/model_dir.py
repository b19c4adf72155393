"""A trained ASR model as a directory that loads on its own.

    config.yaml        the full resolved AsrConfig (model sizes, features, CMVN mode, training)
    model.safetensors  weights of the best epoch (safetensors: loading runs no code)
    tokens.txt         the token table the output layer indexes
    tokenizer.yaml     the output unit (char, bpe, phone), with bpe.model or the phone
                       lexicon.txt when the unit needs them (see speech.text.tokenizer)
    cmvn_global.ark    training-set CMVN statistics (Kaldi matrix), when cmvn=global
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from speech.asr.frontend import Frontend
from speech.asr.model import BlstmCtc, BlstmCtcConfig
from speech.config import load_config, save_config
from speech.fileio import atomic_write
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.features.augment import AugmentConfig
from speech.features.cmvn import read_stats, write_stats
from speech.text.tokenizer import Tokenizer, load_tokenizer
from speech.train import TrainerConfig

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
TOKENS = "tokens.txt"
CMVN = "cmvn_global.ark"


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


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write weights as safetensors, atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)


def write_model_dir(out_dir: Path, cfg: AsrConfig, tokenizer: Tokenizer, lang_dir: Path,
                    stats: np.ndarray | None) -> None:
    """Everything of the model directory except the weights (written by save_weights);
    the tokenizer's files are copied from ``lang_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / CONFIG)
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
    """Load a model directory for decoding (eval mode, on ``device``)."""
    model_dir = Path(model_dir)
    for name in (CONFIG, WEIGHTS, TOKENS):
        if not (model_dir / name).is_file():
            raise SpeechError(f"{model_dir}: not a trained model directory ({name} missing); train one with speech train-asr")
    cfg = load_config(AsrConfig, model_dir / CONFIG)
    tokenizer = load_tokenizer(model_dir)
    stats = read_stats(model_dir / CMVN) if (model_dir / CMVN).is_file() else None
    frontend = Frontend(cfg.features, cfg.cmvn, stats)
    model = BlstmCtc(cfg.model)
    try:
        model.load_state_dict(load_file(str(model_dir / WEIGHTS)))
    except RuntimeError as e:
        raise SpeechError(f"{model_dir / WEIGHTS}: weights do not match {model_dir / CONFIG}: {e}") from None
    model.to(device).eval()
    return LoadedModel(model, cfg, tokenizer, frontend)

