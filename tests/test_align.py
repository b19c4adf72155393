"""CTC forced alignment: word times from posteriors whose tokens sit at known frames, word
spans of every unit, CTM and TextGrid output, and the align stage end to end."""

from __future__ import annotations

import pytest

from speech.alignment import TimeSpan, ctm_lines, textgrid
from speech.asr.align import EDGE_BLANK_SECONDS, align_words
from speech.cli import main
from speech.errors import SpeechError
from speech.text.tokenizer import CharTokenizer, load_tokenizer
from speech.text.tokens import build_char_table
from support.posteriors import posteriors

FRAME = 0.03


def test_word_times_follow_the_frames_of_their_tokens():
    tok = CharTokenizer(build_char_table(["one two"]))
    # frames 0-9 silence, "one" at 10-12, a pause 13-17, <space> at 18, "two" at 19-21, silence to 33
    frames = ["<blank>"] * 10 + ["o", "n", "e"] + ["<blank>"] * 5 + ["<space>"] + ["t", "w", "o"] + ["<blank>"] * 12
    words = align_words(posteriors(tok.table, frames)[0], tok, "one two", FRAME)
    assert [w.label for w in words] == ["one", "two"]
    edge = round(EDGE_BLANK_SECONDS / FRAME)  # blank frames a word may take beyond its spikes
    assert edge == 8
    # "one" takes 8 of the 10 leading blanks, and the pause up to the <space> spike
    assert words[0].start == pytest.approx((10 - edge) * FRAME) and words[0].end == pytest.approx(18 * FRAME)
    # "two" starts at its spike (the <space> spike just before it) and takes 8 trailing blanks
    assert words[1].start == pytest.approx(19 * FRAME) and words[1].end == pytest.approx((22 + edge) * FRAME)
    assert all(w.confidence == pytest.approx(0.6, abs=1e-4) for w in words)
    # a word the audio does not support gets a low confidence
    wrong = align_words(posteriors(tok.table, frames)[0], tok, "one one", FRAME)
    assert wrong[1].confidence < 0.1 < wrong[0].confidence


def test_too_long_a_transcript_is_a_clear_error():
    tok = CharTokenizer(build_char_table(["one two"]))
    with pytest.raises(SpeechError, match="cannot align"):
        align_words(posteriors(tok.table, ["o", "n", "e"])[0], tok, "one two two", FRAME)


def test_word_spans_of_each_unit(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 seven zero oh\nu2 nine one\n")
    for unit in ("char", "bpe"):
        lang = tmp_path / unit
        assert main(["prepare-lang", str(text), str(lang), "--unit", unit, "--bpe-size", "25"]) == 0
        tok = load_tokenizer(lang)
        ids = tok.encode("seven zero oh")
        spans = tok.word_spans("seven zero oh")
        assert [w for w, _, _ in spans] == ["seven", "zero", "oh"] and spans[-1][2] == len(ids) - 1
        for word, first, last in spans:
            assert tok.decode(ids[first: last + 1]) == word


def test_ctm_and_textgrid_formats():
    words = [TimeSpan("one", 0.12, 0.45, 0.91), TimeSpan("two", 0.6, 0.93, 0.5)]
    assert ctm_lines("utt1", words) == ["utt1 1 0.12 0.33 one 0.910", "utt1 1 0.60 0.33 two 0.500"]
    grid = textgrid({"words": words}, duration=1.2)
    assert 'class = "IntervalTier"' in grid and "intervals: size = 5" in grid
    labels = [line.split("=")[1].strip() for line in grid.splitlines() if line.strip().startswith("text =")]
    assert labels == ['""', '"one"', '""', '"two"', '""']
    assert grid.splitlines()[4] == "xmax = 1.200"


def test_align_stage_writes_ctm_and_textgrids(tmp_path):
    from support.feature_dirs import make_asr_dirs

    dirs = make_asr_dirs(tmp_path / "data")
    exp = tmp_path / "exp"
    assert main(["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]), "--lang-dir",
                 str(dirs["lang"]), "--exp-dir", str(exp), "--device", "cpu", "model.hidden_size=16",
                 "model.num_layers=1", "model.subsample=2", "trainer.epochs=1", "trainer.tensorboard=false",
                 "cmvn=utterance"]) == 0
    out = tmp_path / "align"
    assert main(["align", str(exp), str(dirs["dev"]), str(out)]) == 0
    text = dict(line.split(maxsplit=1) for line in (dirs["dev"] / "text").read_text().splitlines())
    frames = dict(line.split() for line in (dirs["dev"] / "utt2num_frames").read_text().splitlines())
    rows = [line.split() for line in (out / "ctm").read_text().splitlines()]
    assert {r[0] for r in rows} == set(text)
    for utt in text:
        mine = [r for r in rows if r[0] == utt]
        assert [r[4] for r in mine] == text[utt].split()  # every word, in order
        starts = [float(r[2]) for r in mine]
        assert starts == sorted(starts) and float(mine[-1][2]) + float(mine[-1][3]) <= int(frames[utt]) * 0.01 + 0.02
        assert all(0 <= float(r[5]) <= 1 for r in mine)
        assert (out / "textgrid" / f"{utt}.TextGrid").is_file()
