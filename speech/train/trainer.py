"""A small, explicit training loop: Adam, gradient-norm clipping, learning-rate halving on
a dev plateau (Kaldi's "newbob"), best/last tracking, atomic checkpoints and resume.

The caller supplies what is model-specific (SpeechBrain's split): ``loss_fn(model, batch)``
returns (summed loss, number of items), ``validate_fn(model)`` returns dev metrics, and
``on_best(model)`` saves the model when the chosen metric improves.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm import tqdm

from speech.errors import SpeechError

log = logging.getLogger("speech.train")


@dataclass
class TrainerConfig:
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # max global gradient norm
    lr_decay_factor: float = 0.5  # multiply lr by this when the dev metric stops improving
    lr_decay_patience: int = 1  # epochs without improvement before decaying
    metric: str = "loss"  # dev metric that selects the best model (lower is better)
    average_best: int = 0  # >1: average the weights of the N best epochs at the end
    seed: int = 0
    log_interval: int = 50  # batches between log lines


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best: float = math.inf
    best_epoch: int = 0
    history: list = field(default_factory=list)  # one dict of metrics per epoch
    averaged: dict = field(default_factory=dict)  # dev metrics of the averaged model, once done


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs epochs over ``train_batches`` (an iterable with ``set_epoch`` optional)."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainerConfig,
        exp_dir: str | os.PathLike,
        device: torch.device,
        loss_fn: Callable[[torch.nn.Module, object], tuple[torch.Tensor, int]],
        validate_fn: Callable[[torch.nn.Module], dict[str, float]],
        on_best: Callable[[torch.nn.Module], None],
    ):
        self.model = model.to(device)
        self.cfg = cfg
        self.exp_dir = Path(exp_dir)
        self.device = device
        self.loss_fn = loss_fn
        self.validate_fn = validate_fn
        self.on_best = on_best
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.lr_decay_factor, patience=cfg.lr_decay_patience
        )
        self.state = TrainState()
        self.checkpoint_path = self.exp_dir / "checkpoint.pt"
        self.snapshot_dir = self.exp_dir / "snapshots"

    # -- checkpoints --------------------------------------------------------------------
    @staticmethod
    def _save(payload: dict, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly, written to a temp file and renamed."""
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "state": self.state.__dict__,
            "rng": _rng_state(),
        }
        self._save(payload, self.checkpoint_path)

    def load_checkpoint(self) -> bool:
        """Resume from ``exp_dir/checkpoint.pt`` if it exists; returns whether it did."""
        if not self.checkpoint_path.is_file():
            return False
        try:
            payload = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as e:  # a checkpoint from another program or a broken file
            raise SpeechError(f"{self.checkpoint_path}: cannot resume from it ({e}); remove it to start over") from None
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.state = TrainState(**payload["state"])
        _set_rng_state(payload["rng"])
        log.info("resumed from %s after epoch %d (best %s %.4f at epoch %d)", self.checkpoint_path,
                 self.state.epoch, self.cfg.metric, self.state.best, self.state.best_epoch)
        return True

    # -- training -----------------------------------------------------------------------
    def _train_epoch(self, batches: Iterable, epoch: int) -> dict[str, float]:
        self.model.train()
        total, count, steps, t0 = 0.0, 0, 0, time.time()
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=None, unit="batch")
        for batch in bar:
            loss, n = self.loss_fn(self.model, batch)
            if not torch.isfinite(loss):
                log.warning("epoch %d batch %d: non-finite loss, batch skipped", epoch, steps)
                self.optimizer.zero_grad(set_to_none=True)
                continue
            self.optimizer.zero_grad(set_to_none=True)
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            total += loss.item()
            count += n
            steps += 1
            bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
            if steps % self.cfg.log_interval == 0:
                log.info("epoch %d step %d: train loss %.4f", epoch, steps, total / count)
        if count == 0:
            raise SpeechError(f"epoch {epoch}: no batch gave a finite loss; check the data and the learning rate")
        return {"train_loss": total / count, "train_seconds": time.time() - t0}

    # -- averaging ----------------------------------------------------------------------
    def _best_epochs(self) -> list[int]:
        ranked = sorted(self.state.history, key=lambda h: (h[f"dev_{self.cfg.metric}"], h["epoch"]))
        return sorted(h["epoch"] for h in ranked[: self.cfg.average_best])

    def _keep_snapshot(self, epoch: int) -> None:
        """Save this epoch's weights if it is among the N best; drop those that no longer are."""
        best = set(self._best_epochs())
        if epoch in best:
            self._save(self.model.state_dict(), self.snapshot_dir / f"epoch_{epoch}.pt")
        for path in self.snapshot_dir.glob("epoch_*.pt"):
            if int(path.stem.split("_")[1]) not in best:
                path.unlink()

    def _average_best(self) -> None:
        """Average the N best epochs' weights; ``on_best`` gets them if dev does not get worse.

        Averaging the weights of several good epochs (as ESPnet and icefall do) smooths out
        the epoch-to-epoch noise of a model selected on a small dev set.
        """
        epochs = self._best_epochs()
        states = [torch.load(self.snapshot_dir / f"epoch_{e}.pt", map_location=self.device, weights_only=True)
                  for e in epochs]
        last = {k: v.clone() for k, v in self.model.state_dict().items()}
        averaged = {k: sum(s[k].double() for s in states).div(len(states)).to(v.dtype) if v.is_floating_point()
                    else v for k, v in states[0].items()}
        self.model.load_state_dict(averaged)
        self.model.eval()
        with torch.no_grad():
            dev = self.validate_fn(self.model)
        value = dev[self.cfg.metric]
        self.state.averaged = {"epochs": epochs, **{f"dev_{k}": v for k, v in dev.items()}}
        log.info("average of epochs %s: dev %s %.4g (best single epoch %d: %.4g)", epochs, self.cfg.metric,
                 value, self.state.best_epoch, self.state.best)
        if value <= self.state.best:
            self.state.best = value
            self.on_best(self.model)
        self.model.load_state_dict(last)  # the checkpoint stays that of the last epoch

    def fit(self, train_batches: Iterable) -> TrainState:
        """Train up to ``cfg.epochs`` epochs, resuming from a checkpoint if there is one."""
        if not self.load_checkpoint():
            torch.manual_seed(self.cfg.seed)
            random.seed(self.cfg.seed)
        for epoch in range(self.state.epoch + 1, self.cfg.epochs + 1):
            if hasattr(train_batches, "set_epoch"):
                train_batches.set_epoch(epoch)
            metrics = self._train_epoch(train_batches, epoch)
            self.model.eval()
            with torch.no_grad():
                dev = self.validate_fn(self.model)
            if self.cfg.metric not in dev:
                raise SpeechError(f"dev metric '{self.cfg.metric}' not among {sorted(dev)}; set trainer.metric")
            metrics.update({f"dev_{k}": v for k, v in dev.items()})
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            value = dev[self.cfg.metric]
            improved = value < self.state.best
            if improved:
                self.state.best, self.state.best_epoch = value, epoch
                self.on_best(self.model)
            self.scheduler.step(value)
            self.state.epoch = epoch
            self.state.history.append({"epoch": epoch, **metrics})
            if self.cfg.average_best > 1:
                self._keep_snapshot(epoch)
            self.save_checkpoint()
            log.info("epoch %d: %s%s", epoch, " ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
                     " (best)" if improved else "")
        if self.cfg.average_best > 1 and not self.state.averaged:
            self._average_best()
            self.save_checkpoint()
        return self.state
