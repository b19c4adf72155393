"""A trained TTS acoustic model as a directory that loads on its own (``kind: tts``; the
contract every model dir follows is in :mod:`speech.model_dir`).

    config.yaml        kind: tts, then the full resolved TtsConfig (its ``vocoder``: the
                       vocoder model dir that ``speech synthesize --model`` uses by default,
                       relative to this dir, or ``griffinlim``)
    model.safetensors  weights of the best dev loss, with the training mels' statistics
    mel.yaml           the mel config of the mels it predicts: a vocoder of another config
                       is refused (:func:`speech.tts.mel.check_same`)

Its input is the frontend's token table (:data:`speech.tts.frontend.TOKEN_SYMBOLS`), fixed
in the code, so the dir holds no token list of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.train import TrainerConfig
from speech.tts.acoustic import AcousticConfig, AcousticModel
from speech.tts.mel import MelConfig

KIND = "tts"
GRIFFIN_LIM = "griffinlim"


@dataclass
class TtsConfig:
    """Everything that defines an acoustic-model experiment; saved resolved into the model dir."""

    model: AcousticConfig = field(default_factory=AcousticConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    mel: MelConfig = field(default_factory=MelConfig)  # filled from the training data dir
    max_frames: int = 6000  # padded mel frames per batch
    max_batch: int = 64  # utterances per batch at most
    num_threads: int = 0  # torch CPU threads; 0 keeps torch's default
    vocoder: str = GRIFFIN_LIM  # the default vocoder: a model dir (relative to this one) or griffinlim


def build_model(cfg: TtsConfig) -> AcousticModel:
    return AcousticModel(cfg.model)
