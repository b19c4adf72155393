"""VAD splitting of long recordings, streaming audio reads, transcript formats, and the
transcribe CLI on a long file."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from speech.alignment import TimeSpan
from speech.asr.outputs import TimedSegment, cues, render
from speech.audio import load_audio, stream_wav_scp_entry
from speech.data.synth_speakers import RenderItem, SynthSpeaker, render as synthesize
from speech.errors import AudioError
from speech.vad import SpeechSpan, VadConfig, split_stream

RATE = 16000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def spoken(tmp_path, texts):
    """16 kHz speech of each text (espeak-ng), as float32 arrays."""
    items = [RenderItem(t, tmp_path / f"s{i}.wav") for i, t in enumerate(texts)]
    synthesize(SynthSpeaker("espeak-ng", "en-us"), items)
    return [load_audio(item.out_path, RATE) for item in items]


def with_pauses(parts, pause_s, seed=0):
    """parts joined by pauses of quiet noise; returns (audio, [(start, end)] of each part)."""
    rng = np.random.default_rng(seed)
    out, spans, t = [], [], 0
    for part in parts:
        gap = (rng.standard_normal(int(pause_s * RATE)) * 1e-4).astype(np.float32)
        out += [gap, part]
        t += len(gap)
        spans.append((t / RATE, (t + len(part)) / RATE))
        t += len(part)
    out.append(np.zeros(int(pause_s * RATE), dtype=np.float32))
    return np.concatenate(out), spans


def chunked(audio, seconds=0.7):
    step = int(seconds * RATE)
    return (audio[i: i + step] for i in range(0, len(audio), step))


@needs_espeak
def test_vad_finds_each_utterance_between_pauses(tmp_path):
    parts = spoken(tmp_path, ["one two three", "four five", "six seven eight nine"])
    audio, spans = with_pauses(parts, 1.5)
    segments = list(split_stream(chunked(audio), VadConfig(), RATE))
    assert len(segments) == 3 and all(isinstance(seg, SpeechSpan) for seg in segments)
    for seg, (start, end) in zip(segments, spans):
        # synthesizer output already has 0.1-0.2 s of silence at each end
        assert abs(seg.start - start) < 0.3
        assert abs(seg.start + len(seg.samples) / RATE - end) < 0.3
        i = int(round(seg.start * RATE))
        assert np.array_equal(seg.samples, audio[i: i + len(seg.samples)])  # true audio, true offsets


@needs_espeak
def test_vad_cuts_long_speech_at_the_maximum(tmp_path):
    (part,) = spoken(tmp_path, ["one two three four five six seven eight nine zero one two three four five"])
    audio, _ = with_pauses([part], 0.5)
    cfg = VadConfig(max_segment_s=2.0)
    segments = list(split_stream(chunked(audio, 0.25), cfg, RATE))
    assert len(segments) >= len(part) / RATE / 2.0
    assert all(len(s.samples) <= 2.0 * RATE + cfg.frame_ms * RATE // 1000 for s in segments)
    for a, b in zip(segments, segments[1:]):  # consecutive, no audio lost or repeated inside speech
        assert a.start + len(a.samples) / RATE <= b.start + 1e-6


def test_silence_gives_no_segment():
    quiet = (np.random.default_rng(0).standard_normal(RATE * 3) * 1e-4).astype(np.float32)
    assert list(split_stream(chunked(quiet), VadConfig(), RATE)) == []


def test_streamed_audio_equals_loaded_audio(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    chunks = list(stream_wav_scp_entry(str(path), RATE, block_seconds=0.5))
    assert len(chunks) >= 6 and max(len(c) for c in chunks) <= RATE
    streamed = np.concatenate(chunks)
    whole = load_audio(path, RATE)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.abs(streamed[100:n - 100] - whole[100:n - 100]).max() < 1e-3
    with pytest.raises(AudioError, match="no such audio file"):
        list(stream_wav_scp_entry(str(tmp_path / "missing.wav"), RATE))


SEGMENTS = [TimedSegment(0.5, 2.0, [TimeSpan("one", 0.6, 0.9, 0.9), TimeSpan("two", 1.0, 1.4, 0.8)]),
            TimedSegment(3661.0, 3663.5, [TimeSpan(f"w{i}", 3661.0 + i * 0.2, 3661.1 + i * 0.2, 0.5)
                                          for i in range(12)])]


def test_formats_parse():
    assert render("text", "rec", SEGMENTS) == "rec one two " + " ".join(f"w{i}" for i in range(12)) + "\n"
    doc = json.loads(render("json", "rec", SEGMENTS))
    assert doc["id"] == "rec" and len(doc["segments"]) == 2
    assert doc["segments"][0]["words"][1] == {"word": "two", "start": 1.0, "end": 1.4, "confidence": 0.8}
    ctm = render("ctm", "rec", SEGMENTS).splitlines()
    assert ctm[0] == "rec 1 0.60 0.30 one 0.900" and len(ctm) == 14
    srt = render("srt", "rec", SEGMENTS)
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == len(cues(SEGMENTS)) == 3  # 2 words, then 12 words in cues of 10 + 2
    assert blocks[0].splitlines() == ["1", "00:00:00,600 --> 00:00:01,400", "one two"]
    assert blocks[1].splitlines()[1] == "01:01:01,000 --> 01:01:02,900"
    vtt = render("vtt", "rec", SEGMENTS)
    assert vtt.startswith("WEBVTT\n\n")
    times = re.findall(r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)$", vtt, re.M)
    assert times[0] == ("00:00:00.600", "00:00:01.400") and len(times) == 3
    assert render("text", "empty", []) == "empty\n" and render("srt", "empty", []) == ""
