"""Voice activity detection with webrtcvad: long recordings cut at pauses into segments a
recogniser can take, from a stream of audio chunks, in bounded memory.

webrtcvad labels 10/20/30 ms frames of 16-bit audio as speech or not (``aggressiveness`` 0-3:
how readily it calls a frame non-speech). A segment starts at the first speech frame (less
``padding_ms``), and ends when ``min_silence_ms`` of non-speech follow (plus ``padding_ms``).
A segment reaching ``max_segment_s`` is cut at its quietest frame in the second half, so
words are not split where a pause can be found. Only the audio of the open segment (at most
``max_segment_s`` plus padding) is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

import numpy as np

VAD_RATES = (8000, 16000, 32000, 48000)


@dataclass
class VadConfig:
    aggressiveness: int = 2  # 0 (least) to 3 (most eager to call a frame non-speech)
    frame_ms: int = 30  # 10, 20 or 30
    padding_ms: int = 200  # audio kept before the first and after the last speech frame
    min_silence_ms: int = 400  # a pause at least this long ends a segment
    max_segment_s: float = 20.0  # longer speech is cut at its quietest frame
    min_speech_ms: int = 150  # segments with less speech than this are dropped (clicks)


class SpeechSpan(NamedTuple):
    """A stretch of a recording's audio that holds speech (not a line of a data dir's
    ``segments`` file: that is :class:`speech.data.Segment`)."""

    start: float  # seconds from the start of the recording
    samples: np.ndarray  # float32 [N]


class VadSegmenter:
    """``push(chunk)`` audio as it is read, then ``finish()``; both yield SpeechSpans in order."""

    def __init__(self, cfg: VadConfig = VadConfig(), sample_rate: int = 16000):
        import webrtcvad

        if sample_rate not in VAD_RATES:
            raise ValueError(f"webrtcvad needs a rate in {VAD_RATES}, not {sample_rate}")
        if cfg.frame_ms not in (10, 20, 30) or not 0 <= cfg.aggressiveness <= 3:
            raise ValueError("VAD frame_ms must be 10, 20 or 30 and aggressiveness 0-3")
        self.cfg = cfg
        self.rate = sample_rate
        self.vad = webrtcvad.Vad(cfg.aggressiveness)
        self.frame = sample_rate * cfg.frame_ms // 1000
        self.pad = sample_rate * cfg.padding_ms // 1000
        self.max_len = int(cfg.max_segment_s * sample_rate)
        self.buffer = np.zeros(0, dtype=np.float32)
        self.offset = 0  # recording sample index of buffer[0]
        self.scanned = 0  # buffer samples already labelled
        self.start: int | None = None  # buffer index where the open segment starts
        self.last_speech_end = 0  # buffer index after the last speech frame
        self.speech_samples = 0
        self.energies: list[tuple[int, float]] = []  # (buffer index, energy) of the open segment's frames

    def push(self, chunk: np.ndarray) -> Iterator[SpeechSpan]:
        self.buffer = np.concatenate([self.buffer, np.asarray(chunk, dtype=np.float32)])
        while self.scanned + self.frame <= len(self.buffer):
            i = self.scanned
            frame = self.buffer[i: i + self.frame]
            pcm = (np.clip(frame, -1, 1) * 32767).astype(np.int16).tobytes()
            speech = self.vad.is_speech(pcm, self.rate)
            self.scanned += self.frame
            if speech:
                if self.start is None:
                    self.start = max(0, i - self.pad)
                    self.speech_samples = 0
                    self.energies = []
                self.last_speech_end = i + self.frame
                self.speech_samples += self.frame
            if self.start is not None:
                self.energies.append((i, float(np.mean(frame * frame))))
                silence = i + self.frame - self.last_speech_end
                if silence >= self.cfg.min_silence_ms * self.rate // 1000:
                    yield from self._close(min(self.last_speech_end + self.pad, len(self.buffer)))
                elif self.scanned - self.start >= self.max_len:
                    yield from self._cut()
            self._trim()

    def finish(self) -> Iterator[SpeechSpan]:
        if self.start is not None:
            yield from self._close(min(self.last_speech_end + self.pad, len(self.buffer)))

    def _close(self, end: int) -> Iterator[SpeechSpan]:
        start, self.start = self.start, None
        if self.speech_samples >= self.cfg.min_speech_ms * self.rate // 1000:
            yield SpeechSpan((self.offset + start) / self.rate, self.buffer[start:end].copy())

    def _cut(self) -> Iterator[SpeechSpan]:
        """Close the over-long open segment at its quietest frame in the second half; the
        rest stays open."""
        half = self.start + (self.scanned - self.start) // 2
        cut = min((e, i) for i, e in self.energies if i >= half)[1]
        start = self.start
        yield SpeechSpan((self.offset + start) / self.rate, self.buffer[start:cut].copy())
        self.start = cut
        self.energies = [(i, e) for i, e in self.energies if i >= cut]

    def _trim(self) -> None:
        """Drop audio no segment can need any more."""
        keep = self.start if self.start is not None else max(0, self.scanned - self.pad)
        if keep > 0:
            self.buffer = self.buffer[keep:]
            self.offset += keep
            self.scanned -= keep
            self.last_speech_end -= keep
            if self.start is not None:
                self.start -= keep
                self.energies = [(i - keep, e) for i, e in self.energies]


def split_stream(chunks: Iterable[np.ndarray], cfg: VadConfig = VadConfig(), sample_rate: int = 16000
                 ) -> Iterator[SpeechSpan]:
    """The speech segments of a recording read as ``chunks`` (float32 at ``sample_rate``)."""
    segmenter = VadSegmenter(cfg, sample_rate)
    for chunk in chunks:
        yield from segmenter.push(chunk)
    yield from segmenter.finish()
