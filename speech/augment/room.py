"""Rooms: an impulse response of a drawn shoebox room (pyroomacoustics' image method),
applied so that the direct sound keeps the dry signal's timing.

Kaldi's and ESPnet's recipes reverberate with recorded or simulated RIR corpora that
cannot be had here; simulating one per utterance from a drawn room size, reverberation
time and source and microphone positions is what those simulated corpora were made with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech.augment.level import match_level

# Sabine's constant 24 ln(10) / c (c = 343 m/s): RT60 = SABINE * volume / (surface * absorption)
SABINE = 24 * np.log(10) / 343.0
MAX_ABSORPTION = 0.99
WALL_MARGIN_M = 0.5


@dataclass(frozen=True)
class Room:
    size: tuple[float, float, float]  # metres
    rt60: float  # seconds
    source: tuple[float, float, float]
    mic: tuple[float, float, float]


@dataclass
class RoomConfig:
    size_min: tuple[float, float, float] = (3.0, 3.0, 2.4)
    size_max: tuple[float, float, float] = (10.0, 8.0, 3.5)
    rt60_min: float = 0.15
    rt60_max: float = 0.8
    min_distance: float = 0.5  # source to microphone, metres


def shortest_rt60(size: tuple[float, float, float]) -> float:
    """The shortest RT60 a room of ``size`` can have with walls of MAX_ABSORPTION."""
    x, y, z = size
    return SABINE * x * y * z / (2 * (x * y + y * z + x * z) * MAX_ABSORPTION)


def draw_room(rng: np.random.Generator, cfg: RoomConfig) -> Room:
    """A room of uniformly drawn size and RT60 (raised to what the room allows), with the
    source and the microphone 1-1.8 m high, WALL_MARGIN_M from the walls and at least
    ``min_distance`` apart."""
    size = tuple(float(rng.uniform(a, b)) for a, b in zip(cfg.size_min, cfg.size_max))
    rt60 = max(float(rng.uniform(cfg.rt60_min, cfg.rt60_max)), shortest_rt60(size) * 1.01)

    def point() -> tuple[float, float, float]:
        return (float(rng.uniform(WALL_MARGIN_M, size[0] - WALL_MARGIN_M)),
                float(rng.uniform(WALL_MARGIN_M, size[1] - WALL_MARGIN_M)), float(rng.uniform(1.0, 1.8)))

    source, mic = point(), point()
    while np.linalg.norm(np.subtract(source, mic)) < cfg.min_distance:
        mic = point()
    return Room(size, rt60, source, mic)


def impulse_response(room: Room, rate: int) -> np.ndarray:
    """float32 [L]: the room's impulse response from source to microphone, by the image
    method to the reflection order that Sabine's formula gives for the RT60. Measured on 30
    drawn rooms: 0.06-0.6 s a response; T20 decay times 0.88-1.42 times the drawn RT60
    (median 1.13: Sabine's formula assumes a diffuse field, which long narrow rooms lack)."""
    import pyroomacoustics as pra

    absorption, order = pra.inverse_sabine(room.rt60, list(room.size))
    sim = pra.ShoeBox(list(room.size), fs=rate, materials=pra.Material(absorption), max_order=order)
    sim.add_source(list(room.source))
    sim.add_microphone(np.asarray(room.mic, dtype=float)[:, None])
    sim.compute_rir()
    return np.asarray(sim.rir[0][0], dtype=np.float32)


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``samples`` [N] heard through ``rir``: float32 [N], the direct path (the RIR's peak)
    at the dry signal's time, at the dry signal's RMS level; the tail past N is cut."""
    from scipy.signal import fftconvolve

    delay = int(np.argmax(np.abs(rir)))
    wet = fftconvolve(samples.astype(np.float64), rir.astype(np.float64))[delay: delay + len(samples)]
    return match_level(wet, samples)
