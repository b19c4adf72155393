"""ASR training data: stored features (feats.scp) + transcripts -> padded batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speech.asr.frontend import Frontend
from speech.errors import DataDirError
from speech.features.augment import FeatureAugmenter
from speech.fileio import read_key_value, kaldi_sort_key
from speech.text.tokenizer import Tokenizer


@dataclass
class Batch:
    """utt_ids [B]; feats [B, T, D] float32; feat_lengths [B]; targets [B, L] int64
    (padded with 0); target_lengths [B]."""

    utt_ids: list[str]
    feats: torch.Tensor
    feat_lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.utt_ids)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.utt_ids, self.feats.to(device), self.feat_lengths.to(device),
                     self.targets.to(device), self.target_lengths.to(device))


class FeatureDataset(torch.utils.data.Dataset):
    """Utterances of a data directory that has feats.scp (and text, when ``tokens`` is given).

    Features are read lazily from the Kaldi archives; ``lengths`` (frames per utterance,
    from utt2num_frames) lets a sampler bucket without reading them. With an ``augmenter``
    (training), each item is perturbed as drawn for the current epoch (``set_epoch``).
    """

    def __init__(self, data_dir: str | Path, frontend: Frontend, tokens: Tokenizer | None = None,
                 augmenter: FeatureAugmenter | None = None):
        data_dir = Path(data_dir)
        for name in ("feats.scp", "utt2num_frames") + (("text",) if tokens else ()):
            if not (data_dir / name).is_file():
                raise DataDirError(f"{data_dir}/{name}: missing; run the feature stage (speech compute-fbank) first")
        self.data_dir = data_dir
        self.frontend = frontend
        self.augmenter = augmenter
        self.epoch = 0
        self.feats = kaldiio.load_scp(str(data_dir / "feats.scp"))
        num_frames = read_key_value(data_dir / "utt2num_frames")
        text = read_key_value(data_dir / "text", allow_empty_value=True) if tokens else {}
        self.utt_ids = sorted(num_frames, key=kaldi_sort_key)
        missing = [u for u in self.utt_ids if tokens and u not in text]
        if missing:
            raise DataDirError(f"{data_dir}/text: no transcript for {len(missing)} utterances (e.g. {missing[0]}); run speech fix-data-dir")
        self.lengths = [int(num_frames[u]) for u in self.utt_ids]
        self.targets = [tokens.encode(text[u]) for u in self.utt_ids] if tokens else None

    def __len__(self) -> int:
        return len(self.utt_ids)

    def feature_dim(self) -> int:
        """D of the stored features (read from the first utterance)."""
        if not self.utt_ids:
            raise DataDirError(f"{self.data_dir}/feats.scp: no utterances")
        return int(np.asarray(self.feats[self.utt_ids[0]]).shape[1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[str, np.ndarray, list[int]]:
        utt = self.utt_ids[i]
        feats = np.asarray(self.feats[utt], dtype=np.float32)
        if self.augmenter is None:
            feats = self.frontend.normalize(feats)
        else:
            feats = self.frontend.normalize(self.augmenter.perturb(feats, self.epoch, i))
            feats = self.augmenter.mask(feats, self.epoch, i)
        return utt, feats, self.targets[i] if self.targets is not None else []


def collate(items: list[tuple[str, np.ndarray, list[int]]]) -> Batch:
    """Pad a list of (utt, feats [T, D], target ids) into a Batch."""
    n = len(items)
    t_max = max(f.shape[0] for _, f, _ in items)
    l_max = max((len(t) for _, _, t in items), default=0)
    feats = torch.zeros(n, t_max, items[0][1].shape[1])
    targets = torch.zeros(n, max(l_max, 1), dtype=torch.long)
    for i, (_, f, t) in enumerate(items):
        feats[i, : f.shape[0]] = torch.from_numpy(f)
        targets[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    return Batch(
        utt_ids=[u for u, _, _ in items],
        feats=feats,
        feat_lengths=torch.tensor([f.shape[0] for _, f, _ in items]),
        targets=targets,
        target_lengths=torch.tensor([len(t) for _, _, t in items]),
    )
