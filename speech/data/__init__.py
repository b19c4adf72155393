"""Kaldi data directories: read, write, validate, fix, subset, split, combine."""

from speech.data.datadir import DataDir, Segment, iter_utterance_audio

__all__ = ["DataDir", "Segment", "iter_utterance_audio"]
