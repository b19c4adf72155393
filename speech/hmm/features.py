"""The GMM-HMM's input: stored MFCCs, normalised per speaker (means, and with
``norm_vars`` variances), with deltas and delta-deltas, as Kaldi's train_mono.sh and
train_deltas.sh pipe them (``apply-cmvn --utt2spk ... | add-deltas``).

The per-speaker statistics are computed here from the speaker's own utterances instead of a
stored cmvn.scp, so that one data dir serves the HMM and the CTC system (which normalises
globally) with no extra stage; jobs are therefore split by speaker. Deltas are
torchaudio's ``compute_deltas`` with a 5-frame window, Kaldi's ``add-deltas`` formula
(window 2, edges replicated).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speech.config import load_config
from speech.data.datadir import FEATURE_CONFIG, MEL_CONFIG, DataDir
from speech.errors import SpeechError
from speech.features import FeatureConfig

CMVN_MODES = ("speaker", "utterance", "none")


@dataclass
class FeaturePipeline:
    cmvn: str = "speaker"  # per-speaker means (Kaldi's default apply-cmvn: means only), per utterance, or none
    norm_vars: bool = False  # also divide by the speaker's standard deviation (apply-cmvn --norm-vars)
    delta_order: int = 2  # 2: MFCC + deltas + delta-deltas (13 -> 39)

    def validate(self) -> None:
        if self.cmvn not in CMVN_MODES:
            raise SpeechError(f"features.cmvn must be one of {', '.join(CMVN_MODES)} (got '{self.cmvn}')")
        if not 0 <= self.delta_order <= 3:
            raise SpeechError(f"features.delta_order must be 0 to 3 (got {self.delta_order})")

    def output_dim(self, stored_dim: int) -> int:
        return stored_dim * (self.delta_order + 1)


def add_deltas(feats: torch.Tensor, order: int) -> torch.Tensor:
    """[T, D] -> [T, D * (order + 1)]: the features, then each order of deltas."""
    import torchaudio

    out, cur = [feats], feats.T
    for _ in range(order):
        cur = torchaudio.functional.compute_deltas(cur, win_length=5)
        out.append(cur.T)
    return torch.cat(out, dim=1)


def feature_config(data_dir: str | Path) -> FeatureConfig:
    """The feature config of DATA_DIR's feats.scp; one-line errors when it has none."""
    data_dir = Path(data_dir)
    if not (data_dir / "feats.scp").is_file() or not (data_dir / FEATURE_CONFIG).is_file():
        if (data_dir / MEL_CONFIG).is_file():
            raise SpeechError(f"{data_dir}: its feats.scp holds TTS log-mels ({MEL_CONFIG}), not ASR features; "
                              f"run speech compute-mfcc {data_dir}")
        raise SpeechError(f"{data_dir}: no features yet; run speech compute-mfcc {data_dir} first")
    return load_config(FeatureConfig, data_dir / FEATURE_CONFIG)


def check_features(data_dir: str | Path, expected: FeatureConfig, model_dir: str | Path) -> None:
    """Refuse features made with another config than the model's."""
    found = feature_config(data_dir)
    if found != expected:
        diff = [k for k in vars(expected) if getattr(found, k) != getattr(expected, k)]
        raise SpeechError(f"{data_dir}/feats.scp: features made with another config than {model_dir}'s "
                          f"(they differ in {', '.join(diff)}); compute them with {model_dir}/{FEATURE_CONFIG}")


def load_features(data_dir: str | Path, pipeline: FeaturePipeline,
                  dim: int | None = None) -> dict[str, torch.Tensor]:
    """utterance -> [T, D * (delta_order + 1)] float32 of every utterance of DATA_DIR.

    dim: the stored dimension the model expects (a one-line error otherwise).
    """
    data_dir = Path(data_dir)
    d = DataDir.read(data_dir)
    if not (data_dir / "feats.scp").is_file():
        raise SpeechError(f"{data_dir}/feats.scp: missing; run speech compute-mfcc {data_dir} first")
    scp = kaldiio.load_scp(str(data_dir / "feats.scp"))
    raw: dict[str, np.ndarray] = {}
    for utt in d.utterances():
        if utt not in scp:
            raise SpeechError(f"{data_dir}/feats.scp: no features for '{utt}'; run speech compute-mfcc again")
        raw[utt] = np.asarray(scp[utt], dtype=np.float32)
        if dim is not None and raw[utt].shape[1] != dim:
            raise SpeechError(f"{data_dir}/feats.scp: '{utt}' has features of dimension {raw[utt].shape[1]}, but "
                              f"the model takes {dim}; compute them with the model's {FEATURE_CONFIG}")
    groups: dict[str, list[str]] = {}
    for utt in raw:
        key = d.utt2spk[utt] if pipeline.cmvn == "speaker" else utt
        groups.setdefault(key, []).append(utt)
    out = {}
    for utts in groups.values():
        mean, std = 0.0, 1.0
        if pipeline.cmvn != "none":
            frames = np.concatenate([raw[u] for u in utts])
            mean = frames.mean(axis=0)
            if pipeline.norm_vars:
                std = np.maximum(frames.std(axis=0), 1e-5)
        for u in utts:
            out[u] = add_deltas(torch.from_numpy((raw[u] - mean) / std), pipeline.delta_order)
    return out
