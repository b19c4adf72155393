"""Transcripts with word times as text, JSON, CTM, SubRip (SRT) and WebVTT.

A transcript is a list of :class:`TimedSegment` (a stretch of speech with its words, times
in seconds from the start of the recording). Subtitle cues hold at most ``CUE_WORDS`` words
and never span two segments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from speech.alignment import TimeSpan, ctm_lines

FORMATS = ("text", "json", "ctm", "srt", "vtt")
EXTENSIONS = {"text": "txt", "json": "json", "ctm": "ctm", "srt": "srt", "vtt": "vtt"}
CUE_WORDS = 10


@dataclass
class TimedSegment:
    start: float
    end: float
    words: list[TimeSpan]

    @property
    def text(self) -> str:
        return " ".join(w.label for w in self.words)


def _clock(seconds: float, decimal: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def cues(segments: list[TimedSegment]) -> list[tuple[float, float, str]]:
    """(start, end, text) subtitle cues: a segment's words in groups of CUE_WORDS."""
    out = []
    for seg in segments:
        for i in range(0, len(seg.words), CUE_WORDS):
            group = seg.words[i: i + CUE_WORDS]
            out.append((group[0].start, group[-1].end, " ".join(w.label for w in group)))
    return out


def render(fmt: str, utt: str, segments: list[TimedSegment]) -> str:
    """The transcript of one recording in ``fmt``, ending with a newline (empty when there is
    nothing to say in a per-word format)."""
    words = [w for seg in segments for w in seg.words]
    if fmt == "text":
        return f"{utt} {' '.join(w.label for w in words)}".rstrip() + "\n"
    if fmt == "ctm":
        return "".join(line + "\n" for line in ctm_lines(utt, words))
    if fmt == "json":
        return json.dumps({
            "id": utt,
            "text": " ".join(w.label for w in words),
            "segments": [{
                "start": round(seg.start, 3), "end": round(seg.end, 3), "text": seg.text,
                "words": [{"word": w.label, "start": round(w.start, 3), "end": round(w.end, 3),
                           "confidence": round(w.confidence, 3)} for w in seg.words],
            } for seg in segments],
        }) + "\n"
    if fmt == "srt":
        return "".join(f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n\n"
                       for i, (a, b, text) in enumerate(cues(segments), 1))
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(f"{_clock(a, '.')} --> {_clock(b, '.')}\n{text}\n\n" for a, b, text in cues(segments))
    raise ValueError(f"unknown format '{fmt}'; one of {', '.join(FORMATS)}")
