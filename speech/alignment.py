"""Time-aligned labels and the files they are written to, shared by every aligner: the CTC
aligner (``speech align``, ``speech transcribe``), the HMM aligner and the TTS durations.

A :class:`TimeSpan` is a word's or a phone's interval in seconds with a confidence;
:func:`ctm_lines` writes Kaldi CTM and :func:`textgrid` a Praat TextGrid with a tier per
level (words, phones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class TimeSpan:
    label: str  # the word or phone
    start: float  # seconds
    end: float
    confidence: float = 1.0  # e.g. the mean posterior of its frames; 1 when there is none


def ctm_lines(utt: str, spans: Sequence[TimeSpan], decimals: int = 2) -> list[str]:
    """Kaldi CTM: ``<utt> 1 <start> <duration> <label> <confidence>`` per span, times with
    ``decimals`` decimals (2 is exact for 10 ms frames; reference times that are not on a
    frame grid need more)."""
    return [f"{utt} 1 {s.start:.{decimals}f} {s.end - s.start:.{decimals}f} {s.label} {s.confidence:.3f}"
            for s in spans]


def _intervals(spans: Sequence[TimeSpan], end: float) -> list[tuple[float, float, str]]:
    """A tier's intervals from 0 to ``end``: the spans, with empty ones in the gaps."""
    intervals: list[tuple[float, float, str]] = []
    t = 0.0
    for s in spans:
        if s.start > t:
            intervals.append((t, s.start, ""))
        intervals.append((s.start, s.end, s.label))
        t = s.end
    if end > t or not intervals:
        intervals.append((t, end, ""))
    return intervals


def textgrid(tiers: Mapping[str, Sequence[TimeSpan]], duration: float) -> str:
    """A Praat TextGrid (long text format) with one interval tier per entry of ``tiers``
    (name -> spans in time order, e.g. ``{"words": ..., "phones": ...}``); gaps are empty
    intervals, and every tier runs to the end of the longest one or ``duration``."""
    end = max([duration] + [s.end for spans in tiers.values() for s in spans])
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {end:.3f}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for number, (name, spans) in enumerate(tiers.items(), 1):
        intervals = _intervals(spans, end)
        lines += [f"    item [{number}]:", '        class = "IntervalTier"', f'        name = "{name}"',
                  "        xmin = 0", f"        xmax = {end:.3f}", f"        intervals: size = {len(intervals)}"]
        for i, (a, b, label) in enumerate(intervals, 1):
            text = label.replace('"', '""')
            lines += [f"        intervals [{i}]:", f"            xmin = {a:.3f}", f"            xmax = {b:.3f}",
                      f'            text = "{text}"']
    return "\n".join(lines) + "\n"
