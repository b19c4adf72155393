"""Learning-rate schedules: linear warmup, then either newbob (halve on a dev plateau) or
inverse-square-root decay (ESPnet's WarmupLR / the Transformer "noam" schedule).

torch has ReduceLROnPlateau and LambdaLR, but each writes the optimizer's lr on its own, so
a warmup in front of a plateau decay would have two schedulers overwriting each other. This
one computes the lr from a few numbers (step, decay scale), sets it every step, and saves
those numbers in the checkpoint, which is all an exact resume needs.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("plateau", "noam")


class LrSchedule:
    """lr(step) = base_lr * warmup(step) * decay.

    - ``plateau``: warmup rises linearly to 1 over ``warmup_steps``; ``decay`` is multiplied
      by ``factor`` when the dev metric has not improved for ``patience`` epochs.
    - ``noam``: ``min(step / warmup, sqrt(warmup / step))``: the peak ``base_lr`` is reached at
      ``warmup_steps`` and decays as 1/sqrt(step) after; dev results do not change it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, kind: str = "plateau",
                 warmup_steps: int = 0, factor: float = 0.5, patience: int = 1):
        if kind not in SCHEDULES:
            raise ValueError(f"lr schedule '{kind}' is not one of {', '.join(SCHEDULES)}")
        if kind == "noam" and warmup_steps <= 0:
            raise ValueError("the noam schedule needs warmup_steps > 0")
        self.optimizer = optimizer
        self.base_lr = base_lr
        self.kind = kind
        self.warmup_steps = warmup_steps
        self.factor = factor
        self.patience = patience
        self.decay = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self.set_step(1)

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (1 = the first update)."""
        step = max(step, 1)
        if self.kind == "noam":
            return self.base_lr * min(step / self.warmup_steps, math.sqrt(self.warmup_steps / step))
        warmup = min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        return self.base_lr * warmup * self.decay

    def set_step(self, step: int) -> None:
        """Set the optimizer's lr for update number ``step`` (the next one to be made)."""
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def epoch_end(self, metric: float) -> None:
        """Newbob: after ``patience`` epochs without a lower dev metric, multiply lr by ``factor``."""
        if self.kind != "plateau":
            return
        if metric < self.best:
            self.best, self.bad_epochs = metric, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.decay *= self.factor
            self.bad_epochs = 0

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"decay": self.decay, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.best, self.bad_epochs = state["decay"], state["best"], state["bad_epochs"]
