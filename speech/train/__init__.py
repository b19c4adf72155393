"""One trainer shared by every neural model; it knows nothing about speech."""

from speech.train.trainer import Trainer, TrainerConfig

__all__ = ["Trainer", "TrainerConfig"]
