"""A trained vocoder as a directory that loads on its own (``kind: vocoder``; the contract
every model dir follows is in :mod:`speech.model_dir`).

    config.yaml        kind: vocoder, then the full resolved VocoderConfig
    model.safetensors  weights of the best dev loss (with the training set's mel statistics)
    mel.yaml           the mel config the vocoder was trained on: mels made otherwise are
                       refused (:func:`check_mels`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from speech.errors import SpeechError
from speech.train import TrainerConfig
from speech.tts.mel import MEL_CONFIG, MelConfig, check_same, load_mel_config
from speech.tts.vocoder import WaveRnn, WaveRnnConfig

KIND = "vocoder"


@dataclass
class VocoderConfig:
    """Everything that defines a vocoder experiment; saved resolved into the model dir."""

    model: WaveRnnConfig = field(default_factory=WaveRnnConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    mel: MelConfig = field(default_factory=MelConfig)  # filled from the training data dir
    segment_frames: int = 8  # mel frames per training segment (the GRU's unrolled length / steps_per_frame)
    batch_size: int = 32  # segments per update
    updates_per_epoch: int = 500  # segments are drawn at random: an epoch is a number of updates
    dev_segments: int = 256  # fixed dev segments whose loss selects the best epoch
    num_threads: int = 0  # torch CPU threads; 0 keeps torch's default


def build_model(cfg: VocoderConfig) -> WaveRnn:
    return WaveRnn(cfg.model)


def check_mels(data_dir: str | Path, model_dir: str | Path) -> MelConfig:
    """The mel config of DATA_DIR's feats.scp, which must be the model dir's; one-line errors."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    if not (data_dir / "feats.scp").is_file():
        raise SpeechError(f"{data_dir}/feats.scp: no mel features; run speech compute-mel {data_dir} first")
    if not (data_dir / MEL_CONFIG).is_file():
        raise SpeechError(f"{data_dir}: feats.scp has no {MEL_CONFIG} beside it, so they are not mels of "
                          f"speech compute-mel (ASR fbank features?); run speech compute-mel {data_dir}")
    found = load_mel_config(data_dir / MEL_CONFIG)
    check_same(found, load_mel_config(model_dir / MEL_CONFIG), f"{data_dir}/feats.scp", str(model_dir))
    return found
