"""What turns audio or stored features into model input, identically in training and use.

A model directory records the feature config and the CMVN mode and statistics, so that
``speech transcribe`` on a raw file computes exactly what training saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech.errors import SpeechError
from speech.features import FeatureConfig, make_extractor
from speech.features.cmvn import accumulate_stats, apply_cmvn

CMVN_MODES = ("global", "utterance")


@dataclass
class Frontend:
    """Feature extraction + CMVN.

    ``cmvn`` is ``global`` (training-set statistics: the usual choice) or ``utterance``
    (each utterance normalised by its own statistics: removes speaker and channel offsets,
    which matters when test voices were never heard in training).
    """

    features: FeatureConfig
    cmvn: str
    global_stats: np.ndarray | None  # [2, D+1] Kaldi layout; required for cmvn=global

    def __post_init__(self):
        if self.cmvn not in CMVN_MODES:
            raise SpeechError(f"cmvn must be one of {CMVN_MODES} (got '{self.cmvn}')")
        if self.cmvn == "global" and self.global_stats is None:
            raise SpeechError("cmvn=global needs global statistics (run compute-cmvn-stats)")
        self._extract = make_extractor(self.features)

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """[T, D] raw features -> [T, D] float32 normalised features."""
        if self.cmvn == "global":
            return apply_cmvn(feats, self.global_stats, norm_vars=True)
        return apply_cmvn(feats, accumulate_stats([feats]), norm_vars=True)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """samples [N] float32 in [-1, 1] at ``features.sample_rate`` -> [T, D] model input."""
        return self.normalize(self._extract(samples))
