"""Acoustic-model training data: the tokens and durations of ``speech tts-durations`` with
the recordings' mels (``speech compute-mel``), as padded, length-bucketed batches.

A data dir's mels are held in memory (two hours of speech at 80 bins and 12.5 ms: about
190 MB), so an epoch reads no archive; batches come from the bucketed sampler of the ASR
half (:mod:`speech.data.loader`), a function of (seed, epoch, position) as the trainer's
exact resume needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speech.data.loader import batch_loader
from speech.errors import SpeechError
from speech.tts.frontend import token_ids
from speech.tts.tts_durations import read_durations


@dataclass
class TtsBatch:
    """utt_ids [B]; phones, stress, position [B, N] int64 (0-padded); token_lengths [B];
    durations [B, N] int64 mel frames; mel [B, T, n_mels] float32 normalised log-mels (0-padded),
    T = the longest utterance; frame_lengths [B] = the durations' sums."""

    utt_ids: list[str]
    phones: torch.Tensor
    stress: torch.Tensor
    position: torch.Tensor
    token_lengths: torch.Tensor
    durations: torch.Tensor
    mel: torch.Tensor
    frame_lengths: torch.Tensor

    def __len__(self) -> int:
        return len(self.utt_ids)

    def to(self, device: torch.device) -> "TtsBatch":
        return TtsBatch(self.utt_ids, *(t.to(device) for t in (self.phones, self.stress, self.position,
                                                              self.token_lengths, self.durations, self.mel,
                                                              self.frame_lengths)))


class TtsDataset(torch.utils.data.Dataset):
    """Every utterance of a data dir that has durations: item i is (utt, phone ids, stress,
    position, durations, log-mel (T, n_mels)). Utterances without durations (dropped by
    tts-durations) are left out; one whose mel frames are not its durations' sum is an
    error that names it."""

    def __init__(self, data_dir: str | Path):
        data_dir = Path(data_dir)
        if not (data_dir / "feats.scp").is_file():
            raise SpeechError(f"{data_dir}/feats.scp: no mels; run speech compute-mel {data_dir} first")
        durations = read_durations(data_dir)
        feats = kaldiio.load_scp(str(data_dir / "feats.scp"))
        self.items = []
        for utt in sorted(durations):
            if utt not in feats:
                raise SpeechError(f"{data_dir}/feats.scp: no mels for '{utt}', which has durations; run speech "
                                  f"compute-mel {data_dir} and speech tts-durations again")
            toks, frames = durations[utt]
            mel = np.array(feats[utt], dtype=np.float32)  # a writable copy: torch.from_numpy shares it
            if sum(frames) != mel.shape[0]:
                raise SpeechError(f"{data_dir}/durations ({utt}): {sum(frames)} frames, but its mels have "
                                  f"{mel.shape[0]}; the mels changed since speech tts-durations: run it again")
            self.items.append((utt, *token_ids(toks), frames, mel))
        if not self.items:
            raise SpeechError(f"{data_dir}: no utterance with durations")
        self.lengths = [item[-1].shape[0] for item in self.items]
        self.mel_mean = torch.zeros(self.items[0][-1].shape[1])
        self.mel_std = torch.ones_like(self.mel_mean)

    def __len__(self) -> int:
        return len(self.items)

    def mel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and standard deviation of the log-mels, (n_mels,) each."""
        frames = np.concatenate([item[-1] for item in self.items])
        return torch.from_numpy(frames.mean(0)), torch.from_numpy(frames.std(0).clip(1e-3))

    def normalise_with(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Batches carry (log-mel - mean) / std: the model's normalised scale."""
        self.mel_mean, self.mel_std = mean.float(), std.float()

    def __getitem__(self, i: int):
        return self.items[i]

    def collate(self, items: list) -> TtsBatch:
        b, n = len(items), max(len(it[1]) for it in items)
        t, n_mels = max(it[-1].shape[0] for it in items), items[0][-1].shape[1]
        ints = torch.zeros(4, b, n, dtype=torch.long)  # phones, stress, position, durations
        mel = torch.zeros(b, t, n_mels)
        for k, (_, phones, stress, position, frames, m) in enumerate(items):
            for row, values in enumerate((phones, stress, position, frames)):
                ints[row, k, :len(values)] = torch.as_tensor(values)
            mel[k, :m.shape[0]] = (torch.from_numpy(m) - self.mel_mean) / self.mel_std
        token_lengths = torch.tensor([len(it[1]) for it in items])
        frame_lengths = torch.tensor([it[-1].shape[0] for it in items])
        return TtsBatch([it[0] for it in items], ints[0], ints[1], ints[2], token_lengths, ints[3], mel,
                        frame_lengths)


def tts_loader(dataset: TtsDataset, max_frames: int, max_batch: int, shuffle: bool = False, seed: int = 0,
               rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """Length-bucketed :class:`TtsBatch` es of ``dataset`` (this rank's share)."""
    return batch_loader(dataset, dataset.lengths, dataset.collate, max_frames, max_batch, shuffle=shuffle, seed=seed,
                        rank=rank, world_size=world_size)
