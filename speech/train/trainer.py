"""One training loop for every neural model: Adam, gradient accumulation and norm clipping,
warmup + newbob/noam learning rates, mixed precision on CUDA, data parallel across ranks,
early stopping, averaging of the best epochs, and checkpoints that resume exactly.

The caller supplies what is model-specific (SpeechBrain's split): ``loss_fn(model, batch)``
returns (summed loss, number of items), ``validate_fn(model)`` returns dev metrics (lower is
better), and ``on_best(model)`` saves the model when the chosen metric improves.

Exact resume: a checkpoint (every ``checkpoint_interval`` updates and at each epoch end,
written to a temp file and renamed) holds the model, optimizer, schedule, grad scaler, the
position inside the epoch, the running epoch totals and every rank's RNG states. For the
resumed run to be identical to an uninterrupted one, the batches must be a function of
(epoch, position) alone, as :class:`speech.data.sampler.BucketBatchSampler` and the seeded
augmentation are; an iterable with ``set_start(k)`` skips k batches without loading them,
any other is iterated past them.

Stop signals: SIGUSR1 or SIGTERM during :meth:`Trainer.fit` (a batch system's warning before
its time limit, a pre-emption) make every rank stop after the current update, write the
checkpoint there and raise :class:`speech.errors.Preempted`; see :mod:`speech.train.stop_signals`.
"""

from __future__ import annotations

import contextlib
import itertools
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

from speech.errors import Preempted, SpeechError
from speech.fileio import atomic_path
from speech.train.distributed import DistInfo, all_true, barrier, broadcast, gather
from speech.train.schedule import SCHEDULES, LrSchedule
from speech.train.stop_signals import StopRequest

log = logging.getLogger("speech.train")

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainerConfig:
    epochs: int = 20
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # max global gradient norm
    accum_grad: int = 1  # batches whose gradients are summed into one update
    lr_schedule: str = "plateau"  # plateau (newbob: decay on a dev plateau) | noam (inverse sqrt)
    warmup_steps: int = 0  # updates of linear warmup
    lr_decay_factor: float = 0.5  # plateau: multiply lr by this when the dev metric stops improving
    lr_decay_patience: int = 1  # plateau: epochs without improvement before decaying
    early_stop_patience: int = 0  # stop after this many epochs without a better dev metric (0: never)
    metric: str = "loss"  # dev metric that selects the best model (lower is better)
    average_best: int = 0  # >1: average the weights of the N best epochs at the end
    checkpoint_interval: int = 0  # also checkpoint every N updates inside an epoch (0: epoch ends only)
    max_bad_batches: int = 10  # non-finite losses in a row that stop the run
    amp: str = "none"  # none | bf16 | fp16: mixed precision, CUDA only (CPU runs in float32)
    tensorboard: bool = True  # event files in EXP_DIR/tensorboard
    seed: int = 0
    log_interval: int = 50  # updates between log lines

    def validate(self) -> None:
        """SpeechError naming the first ``trainer.<key>`` whose value cannot train (checked
        before a stage touches its experiment dir)."""
        rules = [
            ("epochs", self.epochs >= 1, ">= 1"), ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"), ("grad_clip", self.grad_clip >= 0, ">= 0 (0: none)"),
            ("accum_grad", self.accum_grad >= 1, ">= 1"),
            ("lr_schedule", self.lr_schedule in SCHEDULES, " or ".join(SCHEDULES)),
            ("warmup_steps", self.warmup_steps > 0 if self.lr_schedule == "noam" else self.warmup_steps >= 0,
             "> 0 with lr_schedule noam, else >= 0"),
            ("lr_decay_factor", 0 < self.lr_decay_factor <= 1, "in (0, 1]"),
            ("lr_decay_patience", self.lr_decay_patience >= 0, ">= 0"),
            ("early_stop_patience", self.early_stop_patience >= 0, ">= 0 (0: never)"),
            ("average_best", self.average_best >= 0, ">= 0"),
            ("checkpoint_interval", self.checkpoint_interval >= 0, ">= 0 (0: epoch ends only)"),
            ("max_bad_batches", self.max_bad_batches >= 1, ">= 1"),
            ("amp", self.amp in ("none", *AMP_DTYPES), "none, bf16 or fp16"),
            ("log_interval", self.log_interval >= 1, ">= 1"),
        ]
        for key, ok, expected in rules:
            if not ok:
                raise SpeechError(f"trainer.{key} must be {expected} (got {getattr(self, key)!r})")


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer updates made
    best: float = math.inf
    best_epoch: int = 0
    history: list = field(default_factory=list)  # one dict of metrics per epoch
    averaged: dict = field(default_factory=dict)  # dev metrics of the averaged model, once done
    stopped_early: bool = False
    skipped_nonfinite: int = 0
    skipped_oom: int = 0
    bad_in_a_row: int = 0
    # progress inside the unfinished epoch (all zero at an epoch boundary)
    epoch_batches: int = 0
    epoch_loss: float = 0.0
    epoch_items: int = 0
    epoch_seconds: float = 0.0
    seconds: float = 0.0  # wall time of every run up to the last checkpoint (what a killed run lost is not in)


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
    """Runs epochs over ``train_batches`` (an iterable, with ``set_epoch`` and ``set_start``
    optional). Under torchrun/srun pass ``dist`` (speech.train.distributed.init_distributed):
    the model is wrapped in DistributedDataParallel, each rank must iterate its own shard,
    and only rank 0 validates and writes."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainerConfig,
        exp_dir: str | os.PathLike,
        device: torch.device,
        loss_fn: Callable[[torch.nn.Module, object], tuple[torch.Tensor, int]],
        validate_fn: Callable[[torch.nn.Module], dict[str, float]],
        on_best: Callable[[torch.nn.Module], None],
        dist: DistInfo = DistInfo(),
    ):
        cfg.validate()
        self.model = model.to(device)
        self.cfg = cfg
        self.exp_dir = Path(exp_dir)
        self.device = device
        self.dist = dist
        self.loss_fn = loss_fn
        self.validate_fn = validate_fn
        self.on_best = on_best
        self.train_model = self.model
        if dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        try:
            self.schedule = LrSchedule(self.optimizer, cfg.lr, cfg.lr_schedule, cfg.warmup_steps,
                                       cfg.lr_decay_factor, cfg.lr_decay_patience)
        except ValueError as e:
            raise SpeechError(f"trainer: {e}") from None
        self.amp_dtype = AMP_DTYPES.get(cfg.amp) if device.type == "cuda" else None
        if cfg.amp != "none" and self.amp_dtype is None:
            log.info("trainer.amp=%s applies to CUDA only; training in float32 on %s", cfg.amp, device)
        # fp16 gradients underflow without loss scaling; bf16 has float32's range
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self.checkpoint_path = self.exp_dir / "checkpoint.pt"
        self.snapshot_dir = self.exp_dir / "snapshots"
        self.writer = None
        self.stop = StopRequest()

    # -- checkpoints --------------------------------------------------------------------
    @staticmethod
    def _save(payload: dict, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly; every rank calls it, rank 0 writes."""
        rng = gather(_rng_state(), self.dist)
        now = time.time()
        self.state.seconds += now - self._clock
        self._clock = now
        if self.dist.is_main:
            self._save({
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "state": self.state.__dict__,
                "rng": rng,
            }, self.checkpoint_path)
        barrier(self.dist)

    def load_checkpoint(self) -> bool:
        """Resume from ``exp_dir/checkpoint.pt`` if it exists; returns whether it did."""
        if not self.checkpoint_path.is_file():
            return False
        try:
            payload = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.schedule.load_state_dict(payload["schedule"])
            self.scaler.load_state_dict(payload["scaler"])
            state = TrainState(**payload["state"])
        except Exception as e:  # another program's checkpoint, an older format, a broken file
            raise SpeechError(f"{self.checkpoint_path}: cannot resume from it ({e}); remove it to start over") from None
        if len(payload["rng"]) != self.dist.world_size:
            raise SpeechError(f"{self.checkpoint_path}: written by {len(payload['rng'])} process(es); resume with "
                              f"the same number (this run has {self.dist.world_size}) or remove it to start over")
        self.state = state
        self.schedule.set_step(state.step + 1)
        _set_rng_state(payload["rng"][self.dist.rank])
        where = f"epoch {state.epoch + 1} batch {state.epoch_batches}" if state.epoch_batches else f"epoch {state.epoch}"
        log.info("resumed from %s after %s, update %d (best %s %.4f at epoch %d)", self.checkpoint_path, where,
                 state.step, self.cfg.metric, state.best, state.best_epoch)
        return True

    # -- one update ---------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _update(self) -> None:
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self.schedule.set_step(self.state.step + 1)

    def _sync_grads(self) -> None:
        """Average gradients over ranks by hand, for the left-over batches of an epoch whose
        backward ran under no_sync() waiting for an update that the epoch end cuts short."""
        if not self.dist.enabled:
            return
        for p in self.model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.dist.world_size

    def _skip_nonfinite(self, epoch: int) -> None:
        st = self.state
        st.skipped_nonfinite += 1
        st.bad_in_a_row += 1
        log.warning("epoch %d batch %d: non-finite loss, batch skipped (%d in a row)", epoch, st.epoch_batches,
                    st.bad_in_a_row)
        if st.bad_in_a_row >= self.cfg.max_bad_batches:
            raise SpeechError(
                f"epoch {epoch}: {st.bad_in_a_row} batches in a row gave a non-finite loss (last: batch "
                f"{st.epoch_batches}); training stopped. Lower trainer.lr, raise trainer.warmup_steps, or look "
                f"for broken utterances (empty audio, transcripts longer than the audio) in the training data")

    def _skip_oom(self, batch: object, epoch: int) -> None:
        if self.dist.enabled:  # the other ranks wait in an all-reduce for this rank's gradients
            raise SpeechError(f"epoch {epoch} batch {self.state.epoch_batches}: out of GPU memory on rank "
                              f"{self.dist.rank}; lower max_frames / max_batch in the config")
        self.state.skipped_oom += 1
        size = len(batch) if hasattr(batch, "__len__") else "?"
        log.warning("epoch %d batch %d: out of memory with a batch of %s items; skipped (lower max_frames if "
                    "this repeats)", epoch, self.state.epoch_batches, size)
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- one epoch ----------------------------------------------------------------------
    def _epoch_iterator(self, batches: Iterable, epoch: int):
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)
        skip = self.state.epoch_batches
        if not skip:
            return iter(batches)
        log.info("epoch %d: continuing after batch %d", epoch, skip)
        if hasattr(batches, "set_start"):
            batches.set_start(skip)
            return iter(batches)
        return itertools.islice(iter(batches), skip, None)

    def _train_epoch(self, batches: Iterable, epoch: int) -> dict[str, float]:
        cfg, st = self.cfg, self.state
        self.train_model.train()
        t0 = time.time() - st.epoch_seconds
        total = len(batches) if hasattr(batches, "__len__") else None
        bar = tqdm(self._epoch_iterator(batches, epoch), desc=f"epoch {epoch}", leave=False, unit="batch",
                   initial=st.epoch_batches, total=total, disable=None if self.dist.is_main else True)
        pending = 0  # batches whose gradients wait for the next update
        for batch in bar:
            st.epoch_batches += 1
            last_of_update = pending + 1 == cfg.accum_grad
            try:
                with self._autocast():
                    loss, n = self.loss_fn(self.train_model, batch)
                # every rank must skip together, or the others would wait for its gradients
                if not all_true(bool(torch.isfinite(loss)), self.dist, self.device):
                    self._skip_nonfinite(epoch)
                    continue
                no_sync = self.dist.enabled and not last_of_update
                with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
                    self.scaler.scale(loss / n / cfg.accum_grad).backward()
            except torch.OutOfMemoryError:
                self._skip_oom(batch, epoch)
                pending = 0
                continue
            st.bad_in_a_row = 0
            st.epoch_loss += loss.item()
            st.epoch_items += n
            pending += 1
            if pending < cfg.accum_grad:
                continue
            self._update()
            pending = 0
            speed = st.epoch_items / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{st.epoch_loss / st.epoch_items:.3f}", lr=f"{self.schedule.lr:.2e}",
                            items_per_s=f"{speed:.1f}")
            if st.step % cfg.log_interval == 0:
                log.info("epoch %d update %d: train loss %.4f lr %.3g %.1f items/s", epoch, st.step,
                         st.epoch_loss / st.epoch_items, self.schedule.lr, speed)
                if self.writer:
                    self.writer.add_scalar("train/loss", st.epoch_loss / st.epoch_items, st.step)
                    self.writer.add_scalar("train/lr", self.schedule.lr, st.step)
            # every rank must stop at the same update: a signal may reach only some of them
            stop = not all_true(self.stop.signum is None, self.dist, self.device)
            if stop or (cfg.checkpoint_interval and st.step % cfg.checkpoint_interval == 0):
                st.epoch_seconds = time.time() - t0
                self.save_checkpoint()
            if stop:
                raise Preempted(f"stopped by a signal after update {st.step} (epoch {epoch}, batch {st.epoch_batches}) "
                                f"with a checkpoint in {self.checkpoint_path}; the same command resumes")
        if pending:
            self._sync_grads()
            self._update()
        if st.epoch_items == 0:
            raise SpeechError(f"epoch {epoch}: no batch gave a finite loss; check the data and the learning rate")
        return {"train_loss": st.epoch_loss / st.epoch_items, "train_seconds": time.time() - t0}

    def _validate(self) -> dict[str, float]:
        """Dev metrics computed on rank 0 and shared, so every rank takes the same decisions."""
        dev = None
        if self.dist.is_main:
            self.model.eval()
            with torch.no_grad():
                dev = self.validate_fn(self.model)
        return broadcast(dev, self.dist)

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
        the epoch-to-epoch noise of a model selected on a small dev set. Rank 0 only.
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

    # -- the run ------------------------------------------------------------------------
    def _open_tensorboard(self) -> None:
        if not (self.cfg.tensorboard and self.dist.is_main):
            return
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used

        # purge_step drops events a killed run logged after its last checkpoint
        self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=self.state.step + 1)

    def _end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        cfg, st = self.cfg, self.state
        dev = self._validate()
        if cfg.metric not in dev:
            raise SpeechError(f"dev metric '{cfg.metric}' not among {sorted(dev)}; set trainer.metric")
        metrics.update({f"dev_{k}": v for k, v in dev.items()})
        metrics["lr"] = self.schedule.lr  # of the epoch's last update
        value = dev[cfg.metric]
        improved = value < st.best
        if improved:
            st.best, st.best_epoch = value, epoch
            if self.dist.is_main:
                self.on_best(self.model)
        self.schedule.epoch_end(value)
        self.schedule.set_step(st.step + 1)
        st.epoch = epoch
        st.history.append({"epoch": epoch, **metrics})
        st.epoch_batches, st.epoch_loss, st.epoch_items, st.epoch_seconds = 0, 0.0, 0, 0.0
        if cfg.early_stop_patience and epoch - st.best_epoch >= cfg.early_stop_patience:
            st.stopped_early = True
        if cfg.average_best > 1 and self.dist.is_main:
            self._keep_snapshot(epoch)
        self.save_checkpoint()
        if self.writer:
            for k, v in metrics.items():
                self.writer.add_scalar(f"epoch/{k}", v, epoch)
            self.writer.flush()
        log.info("epoch %d: %s%s", epoch, " ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
                 " (best)" if improved else "")
        if st.stopped_early:
            log.info("early stop: no better dev %s for %d epochs (best %.4g at epoch %d)", cfg.metric,
                     epoch - st.best_epoch, st.best, st.best_epoch)

    def fit(self, train_batches: Iterable) -> TrainState:
        """Train up to ``cfg.epochs`` epochs, resuming from a checkpoint if there is one."""
        self._clock = time.time()
        if not self.load_checkpoint():
            # ranks differ in dropout masks, as separate GPUs would
            torch.manual_seed(self.cfg.seed + self.dist.rank)
            random.seed(self.cfg.seed + self.dist.rank)
        self._open_tensorboard()
        try:
            with self.stop.listening():
                for epoch in range(self.state.epoch + 1, self.cfg.epochs + 1):
                    if self.state.stopped_early:
                        break
                    metrics = self._train_epoch(train_batches, epoch)
                    self._end_epoch(epoch, metrics)
            if self.cfg.average_best > 1 and not self.state.averaged:
                if self.dist.is_main:
                    self._average_best()
                self.state.averaged = broadcast(self.state.averaged, self.dist)
                self.state.best = broadcast(self.state.best, self.dist)
                self.save_checkpoint()
        finally:
            if self.writer:
                self.writer.close()
        if self.state.skipped_nonfinite or self.state.skipped_oom:
            log.warning("skipped batches: %d with a non-finite loss, %d out of memory", self.state.skipped_nonfinite,
                        self.state.skipped_oom)
        return self.state
