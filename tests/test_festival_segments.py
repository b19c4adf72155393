"""speech.data.festival_segments: festival's phone times agree with the wav it writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech.alignment_score import score_alignment
from speech.cli import main
from speech.data.datadir import DataDir
from speech.data.festival_segments import SegmentItem, phone_spans, synthesize
from speech.data.synth_speakers import SynthSpeaker, speaker_problem
from speech.errors import SpeechError
from speech.text.g2p import cmu_phones

# Each starts with a vowel: no stop closure or weak fricative between the phone's start and
# the first sound, so the energy onset marks the first phone's start.
SENTENCES = ["Oh, no.", "I am in a mood.", "Anna, only a mile."]


def needs(voice: str) -> str:
    problem = speaker_problem(SynthSpeaker("festival", voice))
    if problem is not None:
        pytest.skip(problem)
    return voice


def energy_onset(x: np.ndarray, sr: int, below_peak_db: float = 35.0) -> float:
    """Start (s) of the first 5 ms window, at a 1 ms step, within ``below_peak_db`` of the loudest."""
    hop = sr // 1000
    n = len(x) // hop
    energy = np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)  # [n]
    db = 10.0 * np.log10(np.convolve(energy, np.ones(5) / 5, "valid") + 1e-12)
    return float(np.nonzero(db > db.max() - below_peak_db)[0][0]) / 1000


@pytest.mark.parametrize("voice", ["kal", "ked"])
def test_phone_times_match_the_wav(tmp_path, voice):
    needs(voice)
    items = [SegmentItem(text, tmp_path / f"{i}.wav") for i, text in enumerate(SENTENCES)]
    for item, (spans, words) in zip(items, synthesize(voice, items)):
        info = sf.info(str(item.wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert spans[0].start == 0.0 and spans[0].label == spans[-1].label == "SIL"
        assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
        assert {s.label for s in spans} <= set(cmu_phones()) | {"SIL"}
        # a diphone voice's waveform runs ~20-30 ms past its last segment (the final window)
        assert 0.0 <= info.duration - spans[-1].end < 0.05
        x, sr = sf.read(item.wav, dtype="float32")
        first = next(s for s in spans if s.label != "SIL")
        # untrimmed: the first sound is where festival says its phone starts (energy rises
        # within a few ms; any trim or pad not applied to the times would show here)
        assert -0.005 < energy_onset(x, sr) - first.start < 0.012, (item.text, first)
        # words span their phones: the first starts with the first phone, the last ends with
        # the last phone, and each starts where a phone starts
        assert [w.label for w in words] == item.text.lower().replace(",", "").rstrip(".").split()
        assert words[0].start == first.start
        assert words[-1].end == next(s for s in reversed(spans) if s.label != "SIL").end
        assert {w.start for w in words} <= {s.start for s in spans}
    assert [s.label for s in spans if s.label != "SIL"][:3] == ["AE", "N", "AH"]  # festival's ax is AH


def test_phone_spans_map_merge_and_refuse():
    spans = phone_spans([("pau", 0.2), ("pau", 0.25), ("ax", 0.3004), ("b", 0.41), ("pau", 0.6)])
    assert [(s.label, s.start, s.end) for s in spans] == [("SIL", 0.0, 0.25), ("AH", 0.25, 0.3), ("B", 0.3, 0.41),
                                                          ("SIL", 0.41, 0.6)]
    with pytest.raises(SpeechError, match="festival phone 'dx' has no CMUdict equivalent"):
        phone_spans([("pau", 0.2), ("dx", 0.3)])
    with pytest.raises(SpeechError, match="gave phone 'b' no duration"):
        phone_spans([("pau", 0.2), ("b", 0.2)])


def test_make_align_ref_writes_a_data_dir_and_its_ctm(tmp_path, capsys):
    needs("kal")
    needs("ked")
    out = tmp_path / "align_ref"
    assert main(["make-align-ref", str(out), "--num-utts", "4", "--source", "digits"]) == 0
    assert "4 utterances by kal, ked" in capsys.readouterr().out
    d = DataDir.read(out)
    assert sorted(d.spk2utt()) == ["fest-kal", "fest-ked"]
    assert all(set(t.split()) <= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                  "oh"} for t in d.text.values())
    lines = (out / "phones.ctm").read_text().splitlines()
    assert {line.split()[0] for line in lines} == set(d.utterances())
    assert lines[0].split()[1:5] == ["1", "0.000", "0.220", "SIL"]  # millisecond times
    for utt, path in d.wav_scp.items():
        ends = [float(s) + float(t) for u, _, s, t, *_ in map(str.split, lines) if u == utt]
        assert 0.0 <= sf.info(path).duration - max(ends) < 0.05
    assert score_alignment(out / "phones.ctm", out / "phones.ctm").within() == 100.0
    words = (out / "words.ctm").read_text().splitlines()
    assert [w.split()[4] for w in words if w.split()[0] == lines[0].split()[0]] == d.text[lines[0].split()[0]].split()
    assert main(["make-align-ref", str(out), "--num-utts", "4", "--source", "digits"]) == 0
    assert "skipping" in capsys.readouterr().out
    assert main(["make-align-ref", str(out), "--voices", "kal,nobody"]) == 1
    assert "festival voices are kal, ked, slt-hts" in capsys.readouterr().err
