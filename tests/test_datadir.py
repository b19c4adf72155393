"""Kaldi data directories: read/write, audio per utterance, validate, fix, subset, split,
combine, utt2dur, and the `speech` subcommands' exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speech.data.datadir as datadir_module
from speech.cli import main as cli
from speech.data import DataDir, Segment, iter_utterance_audio
from speech.data.combine import combine_data_dirs
from speech.data.fix import fix_data_dir
from speech.data.split import balanced_contiguous_split, split_data_dir
from speech.data.subset import subset_data_dir
from speech.data.utt2dur import get_utt2dur
from speech.data.validate import is_warning, validate_data_dir
from speech.errors import AudioError, DataDirError

RATE = 8000


def make_dir(root: Path, name: str = "data", speakers: dict[str, int] | None = None, prefix: str = "") -> Path:
    """A valid data directory: speaker s has n utterances '<prefix><s>-<i>', each a wav of
    0.1 * (i + 1) seconds of a sine, with text and utt2dur."""
    speakers = speakers or {"spkA": 3, "spkB": 2}
    path = root / name
    wav_dir = root / f"{name}_wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    wav_scp, utt2spk, text, utt2dur = {}, {}, {}, {}
    for s, (spk, n) in enumerate(speakers.items()):
        for i in range(n):
            utt = f"{prefix}{spk}-{i}"
            seconds = 0.1 * (i + 1)
            t = np.arange(int(round(seconds * RATE))) / RATE
            sf.write(wav_dir / f"{utt}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * s) * t)).astype(np.float32), RATE)
            wav_scp[utt] = str(wav_dir / f"{utt}.wav")
            utt2spk[utt] = f"{prefix}{spk}"
            text[utt] = f"words of {utt}"
            utt2dur[utt] = round(seconds, 6)
    DataDir(path=path, wav_scp=wav_scp, utt2spk=utt2spk, text=text, utt2dur=utt2dur).write()
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in rows))


def segmented_dir(root: Path) -> Path:
    """Two 1-second recordings at RATE cut into three segments (the last to the end, -1)."""
    path = root / "seg"
    path.mkdir()
    ramp = np.arange(RATE, dtype=np.float32) / RATE / 2  # sample value encodes its position
    for rec in ("recA", "recB"):
        sf.write(root / f"{rec}.wav", ramp, RATE, subtype="FLOAT")
    DataDir(
        path=path,
        wav_scp={"recA": str(root / "recA.wav"), "recB": str(root / "recB.wav")},
        utt2spk={"spk1-a": "spk1", "spk1-b": "spk1", "spk2-c": "spk2"},
        text={"spk1-a": "one", "spk1-b": "two", "spk2-c": "three"},
        segments={"spk1-a": Segment("recA", 0.0, 0.25), "spk1-b": Segment("recA", 0.5, -1),
                  "spk2-c": Segment("recB", 0.25, 0.75)},
    ).write()
    return path


# -- DataDir read / write ------------------------------------------------------------------


def test_write_read_round_trip_sorted_like_lc_all_c(tmp_path):
    d = DataDir(
        path=tmp_path / "d",
        wav_scp={"rec2": "b.wav", "Rec1": "sox a.flac -t wav - |"},
        utt2spk={"b-2": "b", "a-1": "a", "B-3": "B"},
        text={"b-2": "hello world", "a-1": "", "B-3": "x"},
        segments={"b-2": Segment("rec2", 0.5, 1.25), "a-1": Segment("Rec1", 0, -1), "B-3": Segment("rec2", 1.25, 3)},
        utt2dur={"b-2": 0.75, "a-1": 2.5, "B-3": 1.75},
        feats_scp={"b-2": "f.ark:10", "a-1": "f.ark:20", "B-3": "f.ark:30"},
        utt2num_frames={"b-2": 75, "a-1": 250, "B-3": 175},
        cmvn_scp={"a": "c.ark:1", "b": "c.ark:2", "B": "c.ark:3"},
    )
    d.write()
    back = DataDir.read(tmp_path / "d")
    assert back == d
    assert back.utterances() == ["B-3", "a-1", "b-2"]  # C order: uppercase first
    assert lines(tmp_path / "d" / "utt2spk") == ["B-3 B", "a-1 a", "b-2 b"]
    assert lines(tmp_path / "d" / "segments") == ["B-3 rec2 1.25 3", "a-1 Rec1 0 -1", "b-2 rec2 0.5 1.25"]
    assert lines(tmp_path / "d" / "text") == ["B-3 x", "a-1", "b-2 hello world"]
    assert lines(tmp_path / "d" / "spk2utt") == ["B B-3", "a a-1", "b b-2"]
    assert validate_data_dir(tmp_path / "d") == [f"{tmp_path / 'd' / 'text'}:2: warning: utterance 'a-1' has an "
                                                  "empty transcript; fix: write its words, or remove the utterance "
                                                  "if it holds no speech"]


def test_spk2utt_is_derived_and_optional_tables_absent_are_none(tmp_path):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    assert d.segments is None and d.feats_scp is None and d.cmvn_scp is None
    assert d.spk2utt() == {"spkA": ["spkA-0", "spkA-1", "spkA-2"], "spkB": ["spkB-0", "spkB-1"]}
    assert lines(path / "spk2utt") == ["spkA spkA-0 spkA-1 spkA-2", "spkB spkB-0 spkB-1"]


def test_write_removes_tables_that_are_none(tmp_path):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    d.text = None
    d.write()
    assert not (path / "text").exists() and (path / "utt2dur").exists()


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("utt2dur", "spkA-0 0.1\nspkA-1 abc\n", r"utt2dur:2: duration 'abc' is not a number"),
        ("utt2spk", "spkA-0 spkA extra\n", r"utt2spk:1: expected one id"),
        ("utt2spk", "spkA-0 spkA\nspkA-0 spkA\n", r"utt2spk:2: key 'spkA-0' appears twice"),
        ("segments", "spkA-0 rec 1.0\n", r"segments:1: expected '<utterance> <recording> <start> <end>'"),
        ("segments", "spkA-0 rec 2.0 1.0\n", r"segments:1: end 1.0 is not after start 2.0"),
        ("utt2num_frames", "spkA-0 12.5\n", r"utt2num_frames:1: frame count '12.5' is not a positive whole number"),
        ("wav.scp", "spkA-0\n", r"wav.scp:1: 'spkA-0' has no value"),
    ],
)
def test_read_rejects_malformed_lines_with_file_and_line(tmp_path, file, content, message):
    path = make_dir(tmp_path)
    (path / file).write_text(content)
    with pytest.raises(DataDirError, match=message):
        DataDir.read(path)


def test_read_needs_wav_scp_and_utt2spk(tmp_path):
    path = make_dir(tmp_path)
    (path / "wav.scp").unlink()
    with pytest.raises(DataDirError, match=r"wav\.scp: missing"):
        DataDir.read(path)
    with pytest.raises(DataDirError, match="no such data directory"):
        DataDir.read(tmp_path / "nothing")


# -- audio per utterance -------------------------------------------------------------------


def test_iter_utterance_audio_whole_recordings(tmp_path):
    d = DataDir.read(make_dir(tmp_path))
    got = dict(iter_utterance_audio(d, 16000))
    assert list(got) == d.utterances()
    assert len(got["spkA-2"]) == 4800 and got["spkA-2"].dtype == np.float32  # 0.3 s resampled to 16 kHz


def test_iter_utterance_audio_reads_each_recording_once(tmp_path, monkeypatch):
    d = DataDir.read(segmented_dir(tmp_path))
    calls = []
    real = datadir_module.load_wav_scp_entry
    monkeypatch.setattr(datadir_module, "load_wav_scp_entry", lambda v, r: calls.append(v) or real(v, r))
    got = dict(iter_utterance_audio(d, RATE))
    assert sorted(calls) == sorted(d.wav_scp.values())
    ramp = np.arange(RATE, dtype=np.float32) / RATE / 2
    np.testing.assert_allclose(got["spk1-a"], ramp[:2000])
    np.testing.assert_allclose(got["spk1-b"], ramp[4000:])  # end -1: to the end of the recording
    np.testing.assert_allclose(got["spk2-c"], ramp[2000:6000])


def test_iter_utterance_audio_segment_past_recording_end(tmp_path):
    d = DataDir.read(segmented_dir(tmp_path))
    d.segments["spk2-c"] = Segment("recB", 0.5, 1.5)
    with pytest.raises(DataDirError, match=r"utterance 'spk2-c' spans 0.5-1.5 s but recording 'recB' is 1.000 s long"):
        list(iter_utterance_audio(d, RATE, ["spk2-c"]))


def test_iter_utterance_audio_names_unreadable_file(tmp_path):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    Path(d.wav_scp["spkB-1"]).write_text("not audio")
    with pytest.raises(AudioError, match=r"spkB-1\.wav: a text file"):
        list(iter_utterance_audio(d, RATE))


# -- validation ----------------------------------------------------------------------------


def test_valid_dir_has_no_problems(tmp_path):
    path = make_dir(tmp_path)
    assert validate_data_dir(path, check_audio=True) == []
    assert validate_data_dir(segmented_dir(tmp_path), check_audio=True) == []


def problems_of(path: Path, **kw) -> str:
    problems = validate_data_dir(path, **kw)
    assert problems, "expected problems"
    for p in problems:
        assert "; fix: " in p, p
    return "\n".join(problems)


def test_validate_missing_required_files(tmp_path):
    path = make_dir(tmp_path)
    (path / "spk2utt").unlink()
    (path / "wav.scp").unlink()
    out = problems_of(path)
    assert f"{path / 'wav.scp'}: missing" in out
    assert f"{path / 'spk2utt'}: missing" in out and "speech fix-data-dir" in out


def test_validate_unsorted_file(tmp_path):
    path = make_dir(tmp_path)
    rows = lines(path / "text")
    write_lines(path / "text", [rows[1], rows[0], *rows[2:]])
    assert f"{path / 'text'}:2: not sorted: 'spkA-0' comes after 'spkA-1' (line 1)" in problems_of(path)


def test_validate_duplicate_key(tmp_path):
    path = make_dir(tmp_path)
    rows = lines(path / "utt2dur")
    write_lines(path / "utt2dur", [rows[0], rows[0], *rows[1:]])
    assert f"{path / 'utt2dur'}:2: key 'spkA-0' already appears on line 1" in problems_of(path)


def test_validate_speaker_not_prefix_of_utterance(tmp_path):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    d.utt2spk["spkB-1"] = "spkC"
    d.write()
    assert f"{path / 'utt2spk'}:5: utterance 'spkB-1' does not start with its speaker id 'spkC'" in problems_of(path)


def test_validate_utterance_missing_from_text_and_extra_in_utt2dur(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "text", [r for r in lines(path / "text") if not r.startswith("spkA-1 ")])
    write_lines(path / "utt2dur", [*lines(path / "utt2dur"), "zzz-9 1.0"])
    out = problems_of(path)
    assert f"{path / 'utt2spk'}:2: utterance 'spkA-1' has no line in text" in out
    assert f"{path / 'utt2dur'}:6: 'zzz-9' is not an utterance in utt2spk" in out


def test_validate_feats_scp_must_cover_utterances(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "feats.scp", ["spkA-0 f.ark:1"])
    assert f"{path / 'utt2spk'}:5: utterance 'spkB-1' has no line in feats.scp" in problems_of(path)


def test_validate_spk2utt_inconsistent(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "spk2utt", ["spkA spkA-0 spkA-1", "spkB spkB-1 spkB-0"])
    out = problems_of(path)
    assert f"{path / 'spk2utt'}:1: speaker 'spkA' lists other utterances than utt2spk (missing 'spkA-2')" in out
    assert f"{path / 'spk2utt'}:2: utterances of speaker 'spkB' are not sorted" in out


def test_validate_wav_scp_keyed_by_utterance_without_segments(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "wav.scp", [*lines(path / "wav.scp"), "zzz x.wav"])
    assert f"{path / 'wav.scp'}:6: 'zzz' is not an utterance in utt2spk (without a segments file, wav.scp is " \
        "keyed by utterance id)" in problems_of(path)


def test_validate_segments_rules(tmp_path):
    path = segmented_dir(tmp_path)
    write_lines(path / "segments", ["spk1-a recA 0 0.25", "spk1-b recA 0.5 0.4", "spk2-c recZ 0.25 0.75"])
    out = problems_of(path)
    assert f"{path / 'segments'}:2: end 0.4 is not after start 0.5" in out
    assert f"{path / 'segments'}:3: recording 'recZ' of utterance 'spk2-c' is not in wav.scp" in out
    assert f"{path / 'wav.scp'}:2: recording 'recB' is used by no segment" in out
    write_lines(path / "segments", ["spk1-a recA -1 0.25", "spk1-b recA 0.5 -1", "spk2-c recB 0.25 0.75"])
    assert f"{path / 'segments'}:1: start -1 is negative" in problems_of(path)


def test_validate_field_counts_and_numbers(tmp_path):
    path = make_dir(tmp_path)
    rows = lines(path / "utt2spk")
    write_lines(path / "utt2spk", [rows[0] + " extra", *rows[1:]])
    write_lines(path / "utt2dur", ["spkA-0 0.1", "spkA-1 long", *lines(path / "utt2dur")[2:]])
    out = problems_of(path)
    assert f"{path / 'utt2spk'}:1: expected one id without spaces after the key" in out
    assert f"{path / 'utt2dur'}:2: duration 'long' is not a number; fix: write lines as '<utterance> <seconds>'" in out


def test_validate_empty_line_and_windows_line_endings(tmp_path):
    path = make_dir(tmp_path)
    (path / "text").write_text("spkA-0 a\r\n\nspkA-1 b\nspkA-2 c\nspkB-0 d\nspkB-1 e\n")
    out = problems_of(path)
    assert f"{path / 'text'}:1: Windows line ending" in out and "dos2unix" in out
    assert f"{path / 'text'}:2: empty line; fix: remove it" in out


def test_validate_cmvn_scp_keyed_by_speaker(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "cmvn.scp", ["spkA c.ark:1", "spkZ c.ark:2"])
    out = problems_of(path)
    assert f"{path / 'cmvn.scp'}:2: 'spkZ' is not a speaker in utt2spk" in out
    assert f"{path / 'utt2spk'}:4: speaker 'spkB' has no line in cmvn.scp" in out


def test_validate_empty_transcript_is_a_warning(tmp_path):
    path = make_dir(tmp_path)
    write_lines(path / "text", ["spkA-0", *lines(path / "text")[1:]])
    problems = validate_data_dir(path)
    assert len(problems) == 1 and is_warning(problems[0])
    assert problems[0].startswith(f"{path / 'text'}:1: warning: utterance 'spkA-0' has an empty transcript")
    assert cli(["validate-data-dir", str(path)]) == 0
    assert cli(["validate-data-dir", str(path), "--strict"]) == 1


def test_validate_check_audio_reports_unreadable_recordings(tmp_path):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    Path(d.wav_scp["spkA-1"]).write_bytes(b"")
    assert validate_data_dir(path) == []  # audio is only opened when asked
    out = problems_of(path, check_audio=True)
    assert f"{path / 'wav.scp'}:2: recording 'spkA-1' cannot be read (" in out and "empty file (0 bytes)" in out


def test_validate_check_audio_segment_past_end(tmp_path):
    path = segmented_dir(tmp_path)
    write_lines(path / "segments", ["spk1-a recA 0 0.25", "spk1-b recA 0.5 -1", "spk2-c recB 0.25 1.5"])
    assert validate_data_dir(path) == []
    assert f"{path / 'segments'}:3: utterance 'spk2-c' spans 0.25-1.5 s but recording 'recB' is 1.000 s long" \
        in problems_of(path, check_audio=True)


def test_validate_limits_problems_per_kind(tmp_path):
    path = make_dir(tmp_path, speakers={"s": 30})
    write_lines(path / "text", [])
    problems = validate_data_dir(path, max_per_kind=5)
    assert len(problems) == 6 and "25 more problems like the above (missing from text)" in problems[-1]
    assert len(validate_data_dir(path, max_per_kind=None)) == 30


# -- fix -----------------------------------------------------------------------------------


def test_fix_data_dir_repairs_and_reports(tmp_path, capsys):
    path = make_dir(tmp_path)
    write_lines(path / "text", [r for r in lines(path / "text") if not r.startswith("spkB-0 ")])  # drop spkB-0
    rows = lines(path / "utt2spk")
    write_lines(path / "utt2spk", [rows[1], rows[0], rows[0], *rows[2:]])  # unsorted + duplicate
    write_lines(path / "utt2dur", [*lines(path / "utt2dur"), "orphan-1 2.0", "spkA-9 oops"])
    write_lines(path / "wav.scp", [*lines(path / "wav.scp"), "unused /nowhere.wav"])
    write_lines(path / "spk2utt", ["spkA spkA-0"])
    write_lines(path / "cmvn.scp", ["gone c.ark:9", "spkA c.ark:1", "spkB c.ark:2"])
    original_text = (path / "text").read_text()
    assert validate_data_dir(path)

    report = fix_data_dir(path)
    assert validate_data_dir(path) == []
    assert report.kept == 4
    assert report.dropped_utterances["spkB-0"] == "no line in text"
    assert report.dropped_utterances["orphan-1"] == "not in utt2spk (only in utt2dur)"
    assert "without segments" in report.dropped_recordings["unused"]
    assert report.dropped_cmvn == ["gone"]
    assert any(f"{path / 'utt2spk'}:3: removed second line for 'spkA-0'" in f for f in report.line_fixes)
    assert any(f"{path / 'utt2spk'}: re-sorted" in f for f in report.line_fixes)
    assert any(f"{path / 'utt2dur'}:7: removed malformed line" in f for f in report.line_fixes)
    assert DataDir.read(path).utterances() == ["spkA-0", "spkA-1", "spkA-2", "spkB-1"]
    assert (path / ".backup" / "text").read_text() == original_text

    assert cli(["fix-data-dir", str(path)]) == 0
    assert "kept 4 of 4 utterances" in capsys.readouterr().out


def test_fix_data_dir_twice_keeps_the_first_backup(tmp_path, capsys):
    path = make_dir(tmp_path)
    write_lines(path / "text", lines(path / "text")[1:])  # spkA-0 has no transcript
    originals = {name: (path / name).read_bytes() for name in ("text", "utt2spk", "wav.scp")}
    fix_data_dir(path)
    fixed = {name: (path / name).read_bytes() for name in originals}
    assert cli(["fix-data-dir", str(path)]) == 0
    assert f"originals backed up in {path / '.backup.2'}" in capsys.readouterr().out
    assert {name: (path / ".backup" / name).read_bytes() for name in originals} == originals
    assert {name: (path / ".backup.2" / name).read_bytes() for name in originals} == fixed


def test_fix_data_dir_fails_when_the_result_is_still_invalid(tmp_path, capsys):
    path = make_dir(tmp_path)
    d = DataDir.read(path)
    d.utt2spk["spkB-1"] = "spkC"  # no dropped line can fix a speaker id that does not prefix its utterance
    d.write()
    assert cli(["fix-data-dir", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "kept 5 of 5 utterances" in out
    problems = validate_data_dir(path)
    assert len(problems) == 1
    assert f"{path / 'utt2spk'}:5: utterance 'spkB-1' does not start with its speaker id 'spkC'" in problems[0]
    assert err.splitlines() == [f"speech fix-data-dir: error: {problems[0]}"]


def test_fix_data_dir_reports_windows_line_ends(tmp_path, capsys):
    path = make_dir(tmp_path)
    text = lines(path / "text")
    (path / "text").write_text("".join(f"{row}\r\n" for row in text[:3]) + "".join(f"{row}\n" for row in text[3:]))
    assert cli(["fix-data-dir", str(path)]) == 0
    assert f"{path / 'text'}: removed the CR of 3 lines with Windows (CR LF) line ends" in capsys.readouterr().out
    assert (path / "text").read_text().splitlines() == text and "\r" not in (path / "text").read_text()


def test_fix_data_dir_drops_segments_of_missing_recordings(tmp_path):
    path = segmented_dir(tmp_path)
    write_lines(path / "wav.scp", lines(path / "wav.scp")[:1])
    report = fix_data_dir(path)
    assert report.dropped_utterances == {"spk2-c": "recording 'recB' not in wav.scp"}
    assert validate_data_dir(path) == []


def test_fix_data_dir_refuses_to_drop_everything(tmp_path):
    path = make_dir(tmp_path)
    (path / "text").write_text("")
    before = (path / "utt2spk").read_text()
    with pytest.raises(DataDirError, match="would drop every utterance"):
        fix_data_dir(path)
    assert (path / "utt2spk").read_text() == before and not (path / ".backup").exists()


# -- subset --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, expected",
    [
        (["--first", "2"], ["spkA-0", "spkA-1"]),
        (["--last", "2"], ["spkB-0", "spkB-1"]),
        (["--shortest", "2"], ["spkA-0", "spkB-0"]),
        (["--spk-list", "{lists}/spk"], ["spkB-0", "spkB-1"]),
        (["--utt-list", "{lists}/utt"], ["spkA-2", "spkB-0"]),
    ],
)
def test_subset_data_dir_cli(tmp_path, option, expected):
    src = make_dir(tmp_path)
    (tmp_path / "spk").write_text("spkB\n")
    (tmp_path / "utt").write_text("spkB-0 anything\nspkA-2\nnot-there\n")
    dest = tmp_path / "sub"
    assert cli(["subset-data-dir", str(src), str(dest), *(o.format(lists=tmp_path) for o in option)]) == 0
    d = DataDir.read(dest)
    assert d.utterances() == expected
    assert sorted(d.wav_scp) == expected and sorted(d.text) == expected
    assert validate_data_dir(dest) == []


def test_subset_random_is_reproducible_and_carries_features(tmp_path):
    src = make_dir(tmp_path, speakers={"s1": 10, "s2": 10})
    d = DataDir.read(src)
    d.feats_scp = {u: f"f.ark:{i}" for i, u in enumerate(d.utterances())}
    d.write()
    (src / "feature_config.yaml").write_text("type: fbank\n")
    a = subset_data_dir(src, tmp_path / "a", random=5, seed=3)
    b = subset_data_dir(src, tmp_path / "b", random=5, seed=3)
    c = subset_data_dir(src, tmp_path / "c", random=5, seed=4)
    assert a.utterances() == b.utterances() != c.utterances() and len(a.utt2spk) == 5
    assert (tmp_path / "a" / "feature_config.yaml").read_text() == "type: fbank\n"
    assert validate_data_dir(tmp_path / "a") == []


def test_subset_with_segments_keeps_only_used_recordings(tmp_path):
    src = segmented_dir(tmp_path)
    sub = subset_data_dir(src, tmp_path / "sub", first=2)
    assert sub.wav_scp.keys() == {"recA"} and validate_data_dir(tmp_path / "sub") == []


def test_subset_errors(tmp_path, capsys):
    src = make_dir(tmp_path)
    assert cli(["subset-data-dir", str(src), str(tmp_path / "x"), "--first", "6"]) == 1
    assert "cannot select 6 of its 5 utterances" in capsys.readouterr().err
    with pytest.raises(DataDirError, match="utt2dur"):
        (src / "utt2dur").unlink()
        subset_data_dir(src, tmp_path / "x", shortest=1)
    with pytest.raises(DataDirError, match="destination is the source"):
        subset_data_dir(src, src, first=1)


# -- split ---------------------------------------------------------------------------------


def test_balanced_contiguous_split_is_optimal():
    assert balanced_contiguous_split([5, 1, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4, 5]]
    assert balanced_contiguous_split([1, 1, 1], 3) == [[0], [1], [2]]
    assert balanced_contiguous_split([5, 1, 1], 3) == [[0], [1], [2]]  # every part gets a speaker
    assert balanced_contiguous_split([3, 3, 2, 2, 2], 2) == [[0, 1], [2, 3, 4]]


def test_split_by_speaker_keeps_speakers_whole(tmp_path):
    src = make_dir(tmp_path, speakers={"a": 4, "b": 1, "c": 1, "d": 2, "e": 2})
    parts = split_data_dir(src, 3)
    assert parts == [src / "split3" / str(j) for j in (1, 2, 3)]
    dirs = [DataDir.read(p) for p in parts]
    assert [sorted(d.spk2utt()) for d in dirs] == [["a"], ["b", "c", "d"], ["e"]]
    assert sorted(u for d in dirs for u in d.utterances()) == DataDir.read(src).utterances()
    for p in parts:
        assert validate_data_dir(p) == []


def test_split_by_utterance_is_even(tmp_path):
    src = make_dir(tmp_path, speakers={"a": 7})
    parts = split_data_dir(src, 3, by_speaker=False)
    assert [len(DataDir.read(p).utt2spk) for p in parts] == [2, 2, 3]
    assert validate_data_dir(parts[0]) == []


def test_split_more_jobs_than_speakers(tmp_path, capsys):
    src = make_dir(tmp_path)
    with pytest.raises(DataDirError, match=r"cannot split 2 speakers into 3 parts by speaker.*--per-utt"):
        split_data_dir(src, 3)
    assert cli(["split-data-dir", str(src), "3"]) == 1
    assert "--per-utt" in capsys.readouterr().err
    assert cli(["split-data-dir", str(src), "3", "--per-utt"]) == 0
    assert len(DataDir.read(src / "split3" / "3").utt2spk) == 2


def test_split_is_reused_until_the_source_changes(tmp_path):
    src = make_dir(tmp_path, speakers={"a": 2, "b": 2})
    marker = src / "split2" / ".split_complete"
    old = 0

    def age_everything() -> None:
        """Make the split old but newer than the source, so only a change can redo it."""
        nonlocal old
        old = marker.stat().st_mtime_ns - 10**9
        os.utime(marker, ns=(old, old))
        for f in src.iterdir():
            if f.is_file():
                os.utime(f, ns=(old - 10**9, old - 10**9))

    split_data_dir(src, 2)
    age_everything()
    split_data_dir(src, 2)
    assert marker.stat().st_mtime_ns == old  # reused
    os.utime(src / "text", ns=(old + 10**9, old + 10**9))
    split_data_dir(src, 2)
    assert marker.stat().st_mtime_ns > old  # a source file changed after the split: redone
    age_everything()
    split_data_dir(src, 2, by_speaker=False)
    assert marker.stat().st_mtime_ns > old  # made another way: redone
    age_everything()
    (src / "text").unlink()
    split_data_dir(src, 2, by_speaker=False)
    assert marker.stat().st_mtime_ns > old and not (src / "split2" / "1" / "text").exists()  # removed file: redone


# -- combine -------------------------------------------------------------------------------


def test_combine_data_dirs(tmp_path, capsys):
    a = make_dir(tmp_path, "a", {"s1": 2}, prefix="a-")
    b = make_dir(tmp_path, "b", {"s1": 1, "s2": 1}, prefix="b-")
    (b / "utt2dur").unlink()
    dest = tmp_path / "all"
    assert cli(["combine-data-dirs", str(dest), str(a), str(b)]) == 0
    assert f"dropped utt2dur: missing in {b}" in capsys.readouterr().out
    d = DataDir.read(dest)
    assert d.utterances() == ["a-s1-0", "a-s1-1", "b-s1-0", "b-s2-0"] and d.utt2dur is None
    assert validate_data_dir(dest) == []


def test_combine_rejects_duplicate_utterances(tmp_path):
    a = make_dir(tmp_path, "a")
    b = make_dir(tmp_path, "b", {"spkB": 1})
    with pytest.raises(DataDirError, match=r"utterance ids 'spkB-0' appear in more than one source"):
        combine_data_dirs(tmp_path / "all", [a, b])


def test_combine_segmented_with_unsegmented(tmp_path):
    seg = segmented_dir(tmp_path)
    plain = make_dir(tmp_path, "plain", {"spk3": 2})
    notes = combine_data_dirs(tmp_path / "all", [seg, plain])
    assert any("has no segments; used whole recordings" in n for n in notes)
    d = DataDir.read(tmp_path / "all")
    assert d.segments["spk3-1"] == Segment("spk3-1", 0.0, -1.0)
    assert validate_data_dir(tmp_path / "all", check_audio=True) == []
    assert len(dict(iter_utterance_audio(d, RATE))) == 5


# -- utt2dur -------------------------------------------------------------------------------


def test_get_utt2dur_from_audio_headers(tmp_path, capsys):
    path = make_dir(tmp_path)
    (path / "utt2dur").unlink()
    assert cli(["get-utt2dur", str(path)]) == 0
    assert "5 utterances" in capsys.readouterr().out
    assert DataDir.read(path).utt2dur == {"spkA-0": 0.1, "spkA-1": 0.2, "spkA-2": 0.3, "spkB-0": 0.1, "spkB-1": 0.2}


def test_get_utt2dur_from_segments_and_skip_when_up_to_date(tmp_path):
    path = segmented_dir(tmp_path)
    assert get_utt2dur(path) == {"spk1-a": 0.25, "spk1-b": 0.5, "spk2-c": 0.5}
    old = (path / "utt2dur").stat().st_mtime_ns + 10**9
    os.utime(path / "utt2dur", ns=(old, old))
    get_utt2dur(path)
    assert (path / "utt2dur").stat().st_mtime_ns == old
    get_utt2dur(path, force=True)
    assert (path / "utt2dur").stat().st_mtime_ns != old


def test_get_utt2dur_says_when_it_skips(tmp_path, capsys):
    path = make_dir(tmp_path)
    (path / "utt2dur").unlink()
    assert cli(["get-utt2dur", str(path)]) == 0
    capsys.readouterr()
    assert cli(["get-utt2dur", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"get-utt2dur: {path / 'utt2dur'} covers every utterance, newer than wav.scp/segments; skipping (--force to redo)")


# -- command line and imports --------------------------------------------------------------


def test_cli_exit_codes(tmp_path, capsys):
    good = make_dir(tmp_path)
    assert cli(["validate-data-dir", str(good), "--check-audio"]) == 0
    assert "OK (5 utterances, 2 speakers)" in capsys.readouterr().out
    write_lines(good / "text", lines(good / "text")[1:])
    assert cli(["validate-data-dir", str(good)]) == 1
    out = capsys.readouterr().out
    assert f"{good / 'utt2spk'}:1: utterance 'spkA-0' has no line in text" in out and "invalid (1 problems" in out
    assert cli(["fix-data-dir", str(tmp_path / "missing")]) == 1
    assert "fix-data-dir needs wav.scp" in capsys.readouterr().err


def test_data_modules_do_not_import_torch():
    code = ("import sys, speech.audio, speech.data, speech.data.validate, speech.data.fix, speech.data.subset, "
            "speech.data.split, speech.data.combine, speech.data.utt2dur; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- perturb-speed --------------------------------------------------------------------------


def test_perturb_speed_three_way(tmp_path):
    src = make_dir(tmp_path)
    dest = tmp_path / "sp"
    (dest).mkdir()
    (dest / "feats.scp").write_text("stale\n")  # leftovers of an earlier run must not survive
    assert cli(["perturb-speed", str(src), str(dest)]) == 0
    assert not (dest / "feats.scp").exists()
    assert validate_data_dir(dest, check_audio=True) == []
    d = DataDir.read(dest)
    assert len(d.utt2spk) == 3 * 5
    assert d.utt2spk["sp0.9-spkA-2"] == "sp0.9-spkA" and d.utt2spk["spkA-2"] == "spkA"
    assert d.text["sp1.1-spkB-1"] == "words of spkB-1"
    assert d.utt2dur["sp0.9-spkA-2"] == pytest.approx(0.3 / 0.9)
    assert d.wav_scp["sp1.1-spkA-0"].startswith("sox ") and d.wav_scp["sp1.1-spkA-0"].endswith("speed 1.1 |")
    # the audio really is faster: 0.3 s of a 200 Hz sine at 1.1 -> 0.273 s at 220 Hz
    audio = dict(iter_utterance_audio(d, RATE))
    fast = audio["sp1.1-spkA-2"]
    assert len(fast) == pytest.approx(0.3 / 1.1 * RATE, abs=8)
    spectrum = np.abs(np.fft.rfft(fast * np.hanning(len(fast))))
    assert np.argmax(spectrum) * RATE / len(fast) == pytest.approx(220, abs=8)
    assert np.array_equal(audio["spkA-2"], dict(iter_utterance_audio(DataDir.read(src), RATE))["spkA-2"])


def test_perturb_speed_segments_and_pipes(tmp_path):
    src = segmented_dir(tmp_path)
    d = DataDir.read(src)
    d.wav_scp["recB"] = f"cat {d.wav_scp['recB']} |"
    d.write()
    dest = tmp_path / "sp"
    assert cli(["perturb-speed", str(src), str(dest), "--factors", "0.5", "1.0"]) == 0
    p = DataDir.read(dest)
    assert p.segments["sp0.5-spk2-c"] == Segment("sp0.5-recB", 0.5, 1.5)
    assert p.segments["sp0.5-spk1-b"] == Segment("sp0.5-recA", 1.0, -1.0)
    assert p.wav_scp["sp0.5-recB"].startswith("cat ") and "| sox -t wav - -t wav - speed 0.5 |" in p.wav_scp["sp0.5-recB"]
    assert validate_data_dir(dest, check_audio=True) == []
    audio = dict(iter_utterance_audio(p, RATE))
    assert len(audio["sp0.5-spk2-c"]) == pytest.approx(RATE, abs=8)  # 0.5 s played at half speed


def test_perturb_speed_bad_factors_and_same_dir(tmp_path, capsys):
    src = make_dir(tmp_path)
    assert cli(["perturb-speed", str(src), str(tmp_path / "x"), "--factors", "0.9", "0"]) == 1
    assert "distinct and positive" in capsys.readouterr().err
    assert cli(["perturb-speed", str(src), str(src)]) == 1
    assert "destination is the source" in capsys.readouterr().err
