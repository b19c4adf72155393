"""Acoustic features: Kaldi-compatible fbank and MFCC, CMVN statistics.

Nothing here imports torch, so feature stages and their jobs start quickly.
"""

from speech.features.cmvn import apply_cmvn, read_stats
from speech.features.extractor import FeatureConfig, make_extractor

__all__ = ["FeatureConfig", "apply_cmvn", "make_extractor", "read_stats"]
