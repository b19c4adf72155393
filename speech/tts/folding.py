"""Folded generation: one long sequence cut into overlapping segments that an autoregressive
vocoder generates side by side as a batch, then joined with linear cross-fades.

A step-by-step model pays its per-step cost once per step however many rows the batch has,
so generating K segments together is nearly K times faster (fatchord/WaveRNN's
``fold_with_overlap``). Each segment starts ``warmup`` steps early, from a zero state, and
those steps are thrown away: the recurrent state needs them to settle before its samples
sound like the rest. Neighbouring segments then share ``xfade`` steps, faded linearly into
each other (the two fades sum to one, so an identity "model" gives the input back exactly).

Segment k (0-based) covers steps ``[k*target - warmup, (k+1)*target + xfade)`` of the
sequence; positions before the start repeat the first step, after the end the last (the
conditioning of silence, for a vocoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Folding:
    target: int  # steps each segment contributes
    warmup: int  # steps generated before a segment's first kept one, then dropped
    xfade: int  # steps shared with the next segment, cross-faded

    @property
    def length(self) -> int:
        return self.warmup + self.target + self.xfade

    def num_segments(self, steps: int) -> int:
        return max(1, -(-steps // self.target))

    def fold(self, x: torch.Tensor) -> torch.Tensor:
        """(T, ...) -> (num_segments, length, ...)."""
        steps = x.shape[0]
        k = self.num_segments(steps)
        total = self.warmup + k * self.target + self.xfade
        padded = torch.empty((total, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[:self.warmup] = x[0]
        padded[self.warmup:self.warmup + steps] = x
        padded[self.warmup + steps:] = x[-1]
        # the segments overlap: a strided view, copied so that generation may write to it
        return padded.unfold(0, self.length, self.target).movedim(-1, 1).contiguous()

    def fades(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(fade_in, fade_out), each (xfade,), summing to one at every step."""
        fade_in = (torch.arange(self.xfade, dtype=dtype) + 0.5) / max(self.xfade, 1)
        return fade_in, 1.0 - fade_in

    def unfold(self, y: torch.Tensor, steps: int) -> torch.Tensor:
        """(num_segments, length, ...) generated segments -> the (steps, ...) sequence."""
        joiner = Unfolder(self, y.shape[2:], y.dtype)
        out = torch.cat([joiner.push(y), joiner.finish()])
        return out[:steps]


class Unfolder:
    """Joins segments that arrive a few at a time, in order, and returns every step that no
    later segment can change: the streaming half of :meth:`Folding.unfold`."""

    def __init__(self, folding: Folding, step_shape: tuple[int, ...] | torch.Size, dtype: torch.dtype):
        self.f = folding
        fade_in, fade_out = folding.fades(dtype)
        extra = (1,) * len(step_shape)
        self.fade_in = fade_in.view(-1, *extra)
        self.fade_out = fade_out.view(-1, *extra)
        self.tail: torch.Tensor | None = None  # the last segment's xfade steps, waiting for the next

    def push(self, segments: torch.Tensor) -> torch.Tensor:
        """(n, length, ...) the next segments -> the steps they complete."""
        f = self.f
        parts = []
        for seg in segments:
            kept = seg[f.warmup:]  # (target + xfade, ...)
            head = kept[:f.target].clone()
            if self.tail is not None and f.xfade:
                head[:f.xfade] = head[:f.xfade] * self.fade_in + self.tail * self.fade_out
            parts.append(head)
            self.tail = kept[f.target:]
        return torch.cat(parts) if parts else segments.new_empty((0, *segments.shape[2:]))

    def finish(self) -> torch.Tensor:
        """The steps after the last segment's target (its cross-fade region, unfaded)."""
        tail, self.tail = self.tail, None
        return tail if tail is not None else torch.empty(0)
