"""Waveforms from log-mels with a trained :class:`speech.tts.vocoder.WaveRnn`.

:func:`stream` is the fast path: the utterance's conditioning is folded into overlapping
segments (:mod:`speech.tts.folding`), ``batch`` segments at a time are generated together by
the compiled loop, and the samples are handed out as soon as no later segment can change
them, so the start of a long utterance plays while the rest is generated. :func:`naive` is
the textbook form, one Python step per sample group over the whole utterance, kept as the
reference the fast path is measured and checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from speech.tts.folding import Folding, Unfolder
from speech.tts.mel import MelConfig
from speech.tts.pqmf import SynthesisStream
from speech.tts.vocoder import Deemphasis, WaveRnn, compiled_loop, generation_loop


@dataclass
class GenerationConfig:
    """Defaults at 4 kHz steps (16 kHz, 4 bands): segments of 0.125 s, 32 at a time."""

    target: int = 500  # steps each segment contributes
    warmup: int = 50  # steps a segment starts early to let the GRU state settle (dropped)
    xfade: int = 50  # steps cross-faded between neighbouring segments
    batch: int = 32  # segments generated together
    compiled: bool = True  # False: the plain PyTorch loop (same samples, slower)

    def validate(self) -> None:
        if self.target < 1 or self.warmup < 0 or self.batch < 1 or not 0 <= self.xfade <= self.target:
            raise ValueError("generation needs target >= 1, warmup >= 0, 0 <= xfade <= target, batch >= 1")


def stream(model: WaveRnn, log_mel: np.ndarray, gen: GenerationConfig | None = None,
           seed: int = 0) -> Iterator[np.ndarray]:
    """(T, n_mels) log-mel -> float32 chunks whose concatenation is the (T * hop,) waveform."""
    gen = gen or GenerationConfig()
    gen.validate()
    folding = Folding(gen.target, gen.warmup, gen.xfade)
    loop = compiled_loop() if gen.compiled else generation_loop
    rng = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
    dtype, device = model.embed.dtype, model.embed.device
    with torch.inference_mode():
        cond = model.condition(torch.tensor(log_mel, dtype=dtype, device=device).unsqueeze(0))[0]  # (S, C)
        steps = cond.shape[0]
        segments = folding.fold(cond)  # (N, L, C)
        weights = model.loop_weights()
        joiner = Unfolder(folding, (model.cfg.bands,), dtype)
        synth = SynthesisStream(model.pqmf)
        deemphasis = Deemphasis(model.cfg.preemphasis)
        done = 0  # steps handed to the synthesis
        for first in range(0, segments.shape[0], gen.batch):
            group = segments[first:first + gen.batch]
            prepared = model.prepare(group)
            noise = torch.rand(group.shape[1], group.shape[0], model.cfg.bands, generator=rng, dtype=dtype).to(device)
            idx = loop(prepared.gates, prepared.fc, noise, *weights, model.silence_index())  # (L, B, K)
            bands = model.dequantize(idx.transpose(0, 1))  # (B, L, K) sample values: segments cross-fade as signals
            ready = joiner.push(bands)[:steps - done]
            done += ready.shape[0]
            yield deemphasis(synth.push(ready.T).cpu().numpy())
        tail = joiner.finish()[:steps - done]
        if tail.numel():
            synth.push(tail.T)
        yield deemphasis(synth.finish().cpu().numpy())


def generate(model: WaveRnn, log_mel: np.ndarray, gen: GenerationConfig | None = None, seed: int = 0) -> np.ndarray:
    """(T, n_mels) -> (T * hop,) float32: :func:`stream`, joined."""
    return np.concatenate(list(stream(model, log_mel, gen, seed)))


def naive(model: WaveRnn, log_mel: np.ndarray, seed: int = 0) -> np.ndarray:
    """(T, n_mels) -> (T * hop,): the whole utterance as one sequence, one
    :meth:`WaveRnn.reference_step` per Python iteration."""
    rng = torch.Generator().manual_seed(seed)
    dtype = model.embed.dtype
    with torch.inference_mode():
        cond = model.condition(torch.tensor(log_mel, dtype=dtype).unsqueeze(0))  # (1, S, C)
        steps = cond.shape[1]
        noise = torch.rand(steps, 1, model.cfg.bands, generator=rng, dtype=dtype)
        idx = torch.full((1, model.cfg.bands), model.silence_index(), dtype=torch.long)
        h = torch.zeros(1, model.cfg.hidden, dtype=dtype)
        out = torch.empty(1, steps, model.cfg.bands, dtype=torch.long)
        for t in range(steps):
            idx, h = model.reference_step(cond[:, t], idx, h, noise[t])
            out[:, t] = idx
        return model.decode(out)



class Vocoder:
    """A trained vocoder model dir, ready to turn log-mels into audio::

        voc = Vocoder.from_dir("recipes/joe/exp/vocoder")
        wave = voc(log_mel)                # (T, n_mels) -> (T * hop,) at voc.mel.sample_rate
        for chunk in voc.stream(log_mel):  # the same samples, as they are generated
            ...
    """

    def __init__(self, model: WaveRnn, mel: MelConfig, gen: GenerationConfig | None = None):
        self.model, self.mel, self.gen = model.eval(), mel, gen or GenerationConfig()

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str | torch.device = "cpu",
                 gen: GenerationConfig | None = None) -> "Vocoder":
        from speech.model_dir import load_model
        from speech.tts.vocoder_dir import KIND

        cfg, model = load_model(model_dir, KIND)
        return cls(model.to(device), cfg.mel, gen)

    def stream(self, log_mel: np.ndarray, seed: int = 0) -> Iterator[np.ndarray]:
        return stream(self.model, log_mel, self.gen, seed)

    def __call__(self, log_mel: np.ndarray, seed: int = 0) -> np.ndarray:
        return generate(self.model, log_mel, self.gen, seed)
