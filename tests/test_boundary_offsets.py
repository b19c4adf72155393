"""speech fit-boundary-offsets: offsets learnt from an aligner with a known bias per kind of
boundary, and taken off again."""

from __future__ import annotations

import random

import pytest

from speech.alignment import TimeSpan
from speech.alignment_score import score_alignment
from speech.boundary_offsets import BoundaryOffsets, fit_offsets, pair_of, phone_class
from speech.cli import main
from tests.support.cli import fails_in_one_line

WORDS = [["S", "IY"], ["T", "UW"], ["N", "OW"], ["L", "EY", "T"]]
# the biased aligner: stop-vowel boundaries 30 ms late, vowel-nasal 20 ms early, the rest 8 ms late
BIAS = {"stop-vowel": 0.03, "vowel-nasal": -0.02}
OTHERS = 0.008


def reference(seed: int, num_utts: int) -> list[tuple[str, list[TimeSpan]]]:
    rng = random.Random(seed)
    utts = []
    for i in range(num_utts):
        labels = ["SIL"] + [p for _ in range(rng.randint(2, 5)) for p in rng.choice(WORDS)] + ["SIL"]
        t, spans = 0.0, []
        for label in labels:
            d = rng.uniform(0.06, 0.12) if label != "SIL" else 0.2
            spans.append(TimeSpan(label, t, t + d))
            t += d
        utts.append((f"u{i:03d}", spans))
    return utts


def biased(utts):
    """The reference as the biased aligner finds it, each boundary moved by its pair's bias."""
    out = []
    for utt, spans in utts:
        edges = [s.start for s in spans] + [spans[-1].end]
        for k in range(1, len(spans)):
            edges[k] += BIAS.get(pair_of(spans[k - 1].label, spans[k].label), OTHERS)
        out.append((utt, [TimeSpan(s.label, edges[k], edges[k + 1]) for k, s in enumerate(spans)]))
    return out


def write_ctm(path, utts):
    path.write_text("".join(f"{u} 1 {s.start:.4f} {s.end - s.start:.4f} {s.label} 1.00\n" for u, spans in utts
                            for s in spans))
    return path


def test_phone_classes():
    assert [phone_class(p) for p in ("ah0_B", "T", "SIL", "ng", "XX")] == ["vowel", "stop", "silence", "nasal", "XX"]
    assert pair_of("SIL", "L") == "silence-approximant"


def test_the_offsets_of_a_biased_aligner_are_learnt_and_taken_off(tmp_path):
    ref = reference(0, 60)
    fitted = fit_offsets(write_ctm(tmp_path / "ref.ctm", ref), write_ctm(tmp_path / "hyp.ctm", biased(ref)))
    assert fitted.offsets["stop-vowel"] == pytest.approx(0.03, abs=1e-4)
    assert fitted.offsets["vowel-nasal"] == pytest.approx(-0.02, abs=1e-4)
    assert fitted.offsets["fricative-vowel"] == pytest.approx(OTHERS, abs=1e-4)
    assert fitted.default == pytest.approx(OTHERS, abs=1e-4)  # most boundaries are 'the rest'
    # on other utterances of the same aligner, the corrected boundaries are the reference's
    test = reference(1, 20)
    fitted.save(tmp_path / "offsets.yaml")
    loaded = BoundaryOffsets.load(tmp_path / "offsets.yaml")
    assert loaded.offsets == pytest.approx(fitted.offsets, abs=1e-4) and loaded.counts == fitted.counts
    corrected = [(u, loaded.correct(spans, 0.01)) for u, spans in biased(test)]
    ref_ctm = write_ctm(tmp_path / "test_ref.ctm", test)
    before = score_alignment(ref_ctm, write_ctm(tmp_path / "test_hyp.ctm", biased(test)), tolerance=0.005)
    after = score_alignment(ref_ctm, write_ctm(tmp_path / "test_corrected.ctm", corrected), tolerance=0.005)
    assert before.within() < 10 and after.within() == 100.0
    for (_, spans), (_, original) in zip(corrected, test):  # the utterance's edges do not move
        assert (spans[0].start, spans[-1].end) == pytest.approx((original[0].start, original[-1].end))


def test_a_rare_pair_takes_the_overall_median(tmp_path):
    ref = reference(0, 60)
    fitted = fit_offsets(write_ctm(tmp_path / "ref.ctm", ref), write_ctm(tmp_path / "hyp.ctm", biased(ref)),
                         min_count=10_000)
    assert fitted.offsets == {} and sum(fitted.counts.values()) > 500
    assert fitted.offset("T", "UW") == fitted.default == pytest.approx(OTHERS, abs=1e-4)


def test_no_phone_is_left_shorter_than_a_frame():
    offsets = BoundaryOffsets(default=0.0, offsets={"stop-vowel": 0.5}, counts={"stop-vowel": 10}, min_count=1)
    spans = [TimeSpan("SIL", 0.0, 0.1), TimeSpan("T", 0.1, 0.15), TimeSpan("IY", 0.15, 0.3)]
    moved = offsets.correct(spans, 0.01)
    # T-IY would move 500 ms early, past T's own start: it stops a frame after T's start
    assert [t for s in moved for t in (s.start, s.end)] == pytest.approx([0.0, 0.1, 0.1, 0.11, 0.11, 0.3])


def test_the_command_writes_the_offsets_and_bad_files_are_one_line(tmp_path, capsys):
    ref = reference(0, 30)
    ref_ctm, hyp_ctm = write_ctm(tmp_path / "ref.ctm", ref), write_ctm(tmp_path / "hyp.ctm", biased(ref))
    out = tmp_path / "exp" / "offsets.yaml"
    assert main(["fit-boundary-offsets", str(ref_ctm), str(hyp_ctm), str(out)]) == 0
    assert "offsets of" in capsys.readouterr().out
    assert BoundaryOffsets.load(out).offsets["stop-vowel"] == pytest.approx(0.03, abs=1e-4)
    other = write_ctm(tmp_path / "other.ctm", [("x1", ref[0][1])])
    fails_in_one_line(capsys, ["fit-boundary-offsets", str(ref_ctm), str(other), str(out)], "no boundary matches")
    (tmp_path / "bad.yaml").write_text("default: 0.01\n")
    fails_in_one_line(capsys, ["align-hmm", "m", "d", str(tmp_path / "ali"), "--boundary-offsets",
                               str(tmp_path / "bad.yaml")], "not a boundary offsets file")
