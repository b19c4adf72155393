"""What every training stage (train-asr, train-vocoder, ...) does around its own model: the
common options, the finished-experiment check, and the start of a run (device, process
group, log file, threads). The model-specific part lies between :func:`finished` and
:func:`start`: configs are checked before ``--force`` may remove anything."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import torch

from speech.device import resolve_device
from speech.errors import Preempted
from speech.logs import setup_logging
from speech.stage import read_done, write_done
from speech.train.distributed import DistInfo, init_distributed, leave_distributed, rank_device
from speech.train.trainer import Trainer

log = logging.getLogger("speech.train")

DONE = "train.done"


def add_arguments(p: argparse.ArgumentParser, config_help: str, override_example: str) -> None:
    """--exp-dir, --config, --device, --force and key=value overrides."""
    p.add_argument("--exp-dir", type=Path, required=True, help="output model directory")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--force", action="store_true", help="retrain from scratch even if EXP_DIR has a model")
    p.add_argument("overrides", nargs="*", help=f"config overrides such as {override_example}")


def finished(exp: Path, force: bool, weights: str, prog: str) -> bool:
    """With --force, remove EXP_DIR; else whether it holds a finished run (said on stdout)."""
    if force and exp.exists():
        shutil.rmtree(exp)
    if read_done(exp / DONE) is not None and (exp / weights).is_file():
        print(f"{prog}: {exp} is already trained (remove it or pass --force to retrain)")
        return True
    return False


def start(exp: Path, device: str, num_threads: int) -> tuple[DistInfo, torch.device]:
    """Join the run's process group (torchrun/srun) on its device; rank 0 logs to
    EXP_DIR/log/train.log; ``num_threads`` > 0 sets torch's CPU threads."""
    dev = resolve_device(device)
    dist = init_distributed(dev)
    setup_logging(exp / "log" / "train.log" if dist.is_main else None)
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    return dist, rank_device(dev, dist)


def fit(trainer: Trainer, batches, exp: Path, dist: DistInfo) -> None:
    """Train to the end, then (rank 0) EXP_DIR/train.done with the best epoch, the seconds
    and the history, and leave the process group (also when a stop signal ended the run)."""
    try:
        state = trainer.fit(batches)
    except Preempted:
        leave_distributed(dist)
        raise
    if dist.is_main:
        write_done(exp / DONE, {"best_epoch": state.best_epoch, "best": state.best, "seconds": round(state.seconds, 1),
                                "history": state.history})
        log.info("done: best dev %s %.4f at epoch %d; model in %s", trainer.cfg.metric, state.best, state.best_epoch,
                 exp)
    leave_distributed(dist)


class EpochBatches:
    """A DataLoader of a bucketed sampler (:mod:`speech.data.loader`) as the trainer takes
    it: re-drawn each epoch (with the dataset's own per-epoch draw, such as augmentation,
    when it has ``set_epoch``) and resumable mid-epoch."""

    def __init__(self, loader: torch.utils.data.DataLoader, dataset: torch.utils.data.Dataset):
        self.loader = loader
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        self.loader.batch_sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def set_start(self, start: int) -> None:
        self.loader.batch_sampler.set_start(start)

    def __len__(self) -> int:
        return len(self.loader.batch_sampler)

    def __iter__(self):
        return iter(self.loader)
