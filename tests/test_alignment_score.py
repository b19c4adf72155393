"""speech score-alignment: boundary errors of hand-made CTMs with known answers."""

from __future__ import annotations

import json

import pytest

from speech.alignment_score import match_phones, normalize_label, score_alignment
from speech.cli import main
from speech.errors import SpeechError

# u1: SIL AH B K SIL; boundaries 0.20 (onset), 0.30, 0.45, 0.60 (offset).
# u2: SIL M SIL N SIL, a pause inside; boundaries 0.10, 0.30, 0.50, 0.70.
REF = [("u1", [("SIL", 0.0, 0.2), ("AH", 0.2, 0.3), ("B", 0.3, 0.45), ("K", 0.45, 0.6), ("SIL", 0.6, 1.0)]),
       ("u2", [("SIL", 0.0, 0.1), ("M", 0.1, 0.3), ("SIL", 0.3, 0.5), ("N", 0.5, 0.7), ("SIL", 0.7, 0.9)])]


def ctm(path, utts, shift=0.0):
    """A CTM of (utt, [(label, start, end)]) with every time moved by ``shift`` (none below 0)."""
    lines = []
    for utt, spans in utts:
        for label, start, end in spans:
            start, end = max(0.0, start + shift), end + shift
            lines.append(f"{utt} 1 {start:.3f} {end - start:.3f} {label} 1.00")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_shift_of_10_ms_is_within_and_30_ms_is_not(tmp_path):
    ref = ctm(tmp_path / "ref.ctm", REF)
    s = score_alignment(ref, ctm(tmp_path / "h10.ctm", REF, 0.01))
    assert (len(s.errors), s.reference_boundaries, s.utterances) == (8, 8, 2)
    assert s.within() == 100.0
    assert statistics_ms(s) == pytest.approx((10.0, 10.0))
    assert s.median_signed_ms() == pytest.approx(10.0)  # late
    s = score_alignment(ref, ctm(tmp_path / "h30.ctm", REF, -0.03))
    assert s.within() == 0.0 and statistics_ms(s) == pytest.approx((30.0, 30.0))
    assert s.summary().endswith("0.0 % within 20 ms, mean 30.0 ms, median 30.0 ms, median signed -30.0 ms")
    # the tolerance is inclusive: 20 ms off is within 20 ms
    assert score_alignment(ref, ctm(tmp_path / "h20.ctm", REF, 0.02)).within() == 100.0


def statistics_ms(s):
    errors = sorted(e * 1000 for e in s.errors)
    return sum(errors) / len(errors), errors[len(errors) // 2]


def test_silence_in_the_hypothesis_is_optional(tmp_path):
    ref = ctm(tmp_path / "ref.ctm", REF)
    no_silence = [(u, [p for p in spans if p[0] != "SIL"]) for u, spans in REF]
    s = score_alignment(ref, ctm(tmp_path / "nosil.ctm", no_silence))
    assert len(s.errors) == 8 and max(s.errors) == pytest.approx(0.0)
    # the hypothesis runs M into N without the pause: each edge of the pause is 100 ms off
    joined = [REF[0], ("u2", [("SIL", 0.0, 0.1), ("M", 0.1, 0.4), ("N", 0.4, 0.7), ("SIL", 0.7, 0.9)])]
    s = score_alignment(ref, ctm(tmp_path / "joined.ctm", joined))
    assert sorted(round(e * 1000) for e in s.errors) == [0, 0, 0, 0, 0, 0, 100, 100]
    # a silence the reference lacks, 290-310 ms between AH and B: the larger edge error, once
    split = [("u1", [("SIL", 0.0, 0.2), ("AH", 0.2, 0.29), ("sil", 0.29, 0.31), ("B", 0.31, 0.45), ("K", 0.45, 0.6)]),
             REF[1]]
    s = score_alignment(ref, ctm(tmp_path / "split.ctm", split))
    assert len(s.errors) == 8 and round(max(s.errors) * 1000) == 10 and s.within() == 100.0


def test_other_phones_skip_the_boundaries_they_touch(tmp_path):
    ref = ctm(tmp_path / "ref.ctm", REF)
    # u1: B read as P (AH|B and B|K skipped); u2 missing
    hyp = ctm(tmp_path / "hyp.ctm", [("u1", [("AH", 0.2, 0.3), ("P", 0.3, 0.45), ("K", 0.45, 0.6)])])
    s = score_alignment(ref, hyp)
    assert (len(s.errors), s.reference_boundaries, s.utterances) == (2, 4, 1)
    assert (s.missing, s.differing, s.phone_edits, s.reference_phones) == (["u2"], ["u1"], 1, 3)
    # an inserted phone between AH and B: that boundary is skipped, the others scored
    hyp = ctm(tmp_path / "ins.ctm", [("u1", [("AH", 0.2, 0.25), ("T", 0.25, 0.3), ("B", 0.3, 0.45),
                                              ("K", 0.45, 0.6)])])
    s = score_alignment(ref, hyp)
    assert len(s.errors) == 3 and s.phone_edits == 1


def test_labels_compare_without_stress_and_word_position():
    assert [normalize_label(x) for x in ("ah0_B", "K_E", "sil", "SH")] == ["AH", "K", "SIL", "SH"]
    assert match_phones(["A", "B", "C"], ["A", "C"]) == ({0: 0, 2: 1}, 1)


def test_malformed_line_names_file_and_line(tmp_path):
    ref = ctm(tmp_path / "ref.ctm", REF)
    bad = tmp_path / "bad.ctm"
    bad.write_text("u1 1 0.00 0.20 SIL\n\nu1 1 0.20 abc AH\n")
    with pytest.raises(SpeechError, match=rf"^{bad}:3: duration 'abc' is not a number; expected '<utt> "):
        score_alignment(ref, bad)
    bad.write_text("u1 1 0.20 AH\n")
    with pytest.raises(SpeechError, match=rf"^{bad}:1: 4 fields; expected"):
        score_alignment(ref, bad)
    with pytest.raises(SpeechError, match="no such file"):
        score_alignment(ref, tmp_path / "none.ctm")
    other = ctm(tmp_path / "other.ctm", [("x9", REF[0][1])])
    with pytest.raises(SpeechError, match="none of the 2 utterances"):
        score_alignment(ref, other)


def test_cli_prints_one_line_and_writes_json(tmp_path, capsys):
    ref = ctm(tmp_path / "ref.ctm", REF)
    hyp = ctm(tmp_path / "hyp.ctm", REF, 0.01)
    argv = ["score-alignment", str(ref), str(hyp), "--tolerance", "0.005", "--json", str(tmp_path / "s.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "8 of 8 boundaries" in out[0] and "0.0 % within 5 ms, mean 10.0 ms" in out[0]
    figures = json.loads((tmp_path / "s.json").read_text())
    assert figures["within_tolerance_percent"] == 0.0 and figures["mean_ms"] == 10.0 and figures["boundaries"] == 8
    assert main(["score-alignment", str(ref), str(tmp_path / "none.ctm")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "none.ctm: no such file" in err


def test_row_and_header_on_the_command_line(tmp_path, capsys):
    ref = ctm(tmp_path / "ref.ctm", REF)
    hyp = ctm(tmp_path / "late.ctm", REF, 0.01)
    assert main(["score-alignment", str(ref), str(hyp), "--row", "late by 10", "--header"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["| aligner | boundaries | scored | within 20 ms | mean error | median signed error |",
                                "|---|---|---|---|---|---|",
                                "| late by 10 | 8 | 8 | 100.0 % | 10.0 ms | +10.0 ms |"]
    assert "100.0 % within 20 ms" in err
