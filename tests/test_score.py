"""Scoring (speech score) and the results table (speech make-results), on hand-counted examples."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

from speech.asr.results import collect_results
from speech.asr.score import align, align_utterances, chars, compute_error_stats, format_per_utt
from speech.cli import main
from speech.errors import SpeechError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# Hand-counted: u1 "one two three four" vs "one too three four five": 1 sub + 1 ins;
# u2 "six seven" vs "six seven": correct; u3 "eight nine" vs "nine": 1 del.
REFS = {"u1": "one two three four", "u2": "six seven", "u3": "eight nine"}
HYPS = {"u1": "one too three four five", "u2": "six seven", "u3": "nine"}


def test_counts_ins_del_sub():
    s = compute_error_stats(REFS, HYPS)
    assert (s.ref_words, s.ins, s.dels, s.subs, s.errors) == (8, 1, 1, 1, 3)
    assert (s.sentences, s.sentence_errors, s.missing) == (3, 2, 0)
    assert s.error_rate == pytest.approx(37.5)
    assert s.kaldi_line() == "%WER 37.50 [ 3 / 8, 1 ins, 1 del, 1 sub ]"
    assert s.ser_line() == "%SER 66.67 [ 2 / 3 ]"


def test_kaldi_line_format_matches_compute_wer():
    s = compute_error_stats({"a": "x " * 5643}, {"a": "x " * 5643})
    s.ins, s.dels, s.subs = 58, 38, 315
    assert s.kaldi_line() == "%WER 7.28 [ 411 / 5643, 58 ins, 38 del, 315 sub ]"
    assert s.kaldi_line("CER").startswith("%CER 7.28 [ 411 / 5643,")


def test_empty_and_missing_hypotheses_are_deletions():
    s = compute_error_stats({"a": "one two", "b": "three"}, {"a": ""})
    assert (s.ref_words, s.dels, s.ins, s.subs, s.missing, s.sentence_errors) == (3, 3, 0, 0, 1, 2)
    assert s.error_rate == 100.0


def test_empty_reference():
    assert compute_error_stats({"a": ""}, {"a": ""}).error_rate == 0.0
    s = compute_error_stats({"a": ""}, {"a": "hello"})
    assert (s.ins, s.ref_words) == (1, 0) and s.error_rate == float("inf")


def test_extra_hypothesis_is_an_error_naming_it():
    with pytest.raises(SpeechError, match="not in the reference: zz"):
        compute_error_stats({"a": "x"}, {"a": "x", "zz": "y"})


def test_token_lists_give_character_and_id_error_rates():
    refs = {"a": chars("ab cd"), "b": chars("e")}
    s = compute_error_stats(refs, {"a": chars("abxd"), "b": chars("e f")})
    assert (s.ref_words, s.subs, s.ins, s.dels) == (5, 1, 1, 0)
    s = compute_error_stats({"a": [3, 4, 5]}, {"a": [3, 5]})
    assert (s.ref_words, s.dels, s.errors) == (3, 1, 1)


def test_alignment_never_confuses_a_token_with_the_gap():
    pairs = align(["***", "a"], ["a"])
    assert pairs == [("***", None), ("a", "a")]


def test_per_utt_columns_are_centred_like_kaldi():
    # Columns: a|a|C, bb|***|D (width 3), c|c|C, ***|dddd|I (width 4); extra space goes left.
    lines = format_per_utt(align_utterances({"u1": "a bb c"}, {"u1": "a c dddd"}))
    assert lines == [
        "u1 ref  a   bb  c   ***",
        "u1 hyp  a  ***  c  dddd",
        "u1 op   C   D   C    I",
        "u1 #csid 2 0 1 1",
    ]


def test_score_stage_writes_wer_per_utt_and_cer(tmp_path):
    data, dec = tmp_path / "data", tmp_path / "exp" / "sys" / "decode_test"
    write(data / "text", "".join(f"{u} {t}\n" for u, t in REFS.items()))
    write(dec / "text", "u1 one too three four five\nu2 six seven\nu3 nine\n")
    assert main(["score", str(data), str(dec), "--cer"]) == 0
    assert (dec / "wer").read_text() == "%WER 37.50 [ 3 / 8, 1 ins, 1 del, 1 sub ]\n%SER 66.67 [ 2 / 3 ]\n"
    per_utt = (dec / "scoring" / "per_utt").read_text().splitlines()
    assert len(per_utt) == 12
    assert per_utt[0].split() == ["u1", "ref", "one", "two", "three", "four", "***"]
    assert per_utt[1].split() == ["u1", "hyp", "one", "too", "three", "four", "five"]
    assert per_utt[2].split() == ["u1", "op", "C", "S", "C", "C", "I"]
    assert per_utt[3] == "u1 #csid 3 1 1 0"
    assert per_utt[8:10] == ["u3 ref  eight  nine", "u3 hyp   ***   nine"]
    # Characters without spaces: u1 "onetwothreefour" (15) vs "onetoothreefourfive": two->too is
    # 1 sub ("w"->"o"), "five" 4 ins; u2 "sixseven" (8) correct; u3 "eightnine" (9) vs "nine": 5 del.
    assert (dec / "cer").read_text() == "%CER 31.25 [ 10 / 32, 4 ins, 5 del, 1 sub ]\n"
    assert not (dec / "scoring" / "per_spk").exists()  # no utt2spk in data


def test_score_stage_per_speaker_table(tmp_path):
    data, dec = tmp_path / "data", tmp_path / "decode"
    write(data / "text", "".join(f"{u} {t}\n" for u, t in REFS.items()))
    write(data / "utt2spk", "u1 a\nu2 b\nu3 b\n")
    write(dec / "text", "".join(f"{u} {t}\n" for u, t in HYPS.items()))
    assert main(["score", str(data), str(dec)]) == 0
    rows = [line.split() for line in (dec / "scoring" / "per_spk").read_text().splitlines()]
    assert rows[0] == ["SPEAKER", "#SENT", "#WORD", "Sub", "Ins", "Del", "Err", "%WER", "%SER"]
    # a: u1 (4 words, 1 sub + 1 ins); b: u2 correct + u3 (2 words, 1 del)
    assert rows[1] == ["a", "1", "4", "1", "1", "0", "2", "50.00", "100.00"]
    assert rows[2] == ["b", "2", "4", "0", "0", "1", "1", "25.00", "50.00"]
    assert rows[3] == ["SUM", "3", "8", "1", "1", "1", "3", "37.50", "66.67"]


def test_score_stage_missing_hypothesis_and_hyp_option(tmp_path):
    data, dec = tmp_path / "data", tmp_path / "decode"
    write(data / "text", "a one two\nb three\nc four\n")
    hyp = write(tmp_path / "hyp.txt", "a one two\nb\n")  # b: empty hypothesis, c: missing
    assert main(["score", str(data), str(dec), "--hyp", str(hyp)]) == 0
    assert (dec / "wer").read_text().splitlines() == [
        "%WER 50.00 [ 2 / 4, 0 ins, 2 del, 0 sub ]",
        "%SER 66.67 [ 2 / 3 ]",
        "Scored 3 sentences, 1 not present in hyp.",
    ]
    assert not (dec / "cer").exists()


def test_score_stage_errors_exit_1_and_write_nothing(tmp_path, capsys):
    data, dec = tmp_path / "data", tmp_path / "decode"
    write(data / "text", "a one\n")
    write(dec / "text", "a one\nstray two\n")
    assert main(["score", str(data), str(dec)]) == 1
    assert "stray" in capsys.readouterr().err
    assert not (dec / "wer").exists()
    assert main(["score", str(data), str(tmp_path / "nowhere")]) == 1
    assert "nowhere/text: no such file" in capsys.readouterr().err
    write(dec / "text", "a one\na two\n")
    assert main(["score", str(data), str(dec)]) == 1
    assert f"{dec / 'text'}:2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["score", str(data)])
    assert e.value.code == 2


def test_score_stage_text_not_utf8_is_one_line_naming_the_line(tmp_path, capsys):
    data, dec = tmp_path / "data", tmp_path / "decode"
    lines = [f"u{i} one two" for i in range(5000)]  # far more than one block of the decoder
    write(data / "text", "\n".join(lines) + "\n")
    (dec / "text").parent.mkdir()
    (dec / "text").write_bytes(("\n".join(lines[:4000]) + "\n").encode() + b"u4000 caf\xe9\n")  # Latin-1 "café"
    assert main(["score", str(data), str(dec)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"speech score: error: {dec / 'text'}:4001: not UTF-8 text; convert the file to UTF-8 "
                                "(e.g. with iconv)"]


def make_decode(exp, system, test_set, wer_text, cer_text=None):
    write(exp / system / f"decode_{test_set}" / "wer", wer_text)
    if cer_text is not None:
        write(exp / system / f"decode_{test_set}" / "cer", cer_text)


def test_make_results_table(tmp_path, capsys):
    exp = tmp_path / "exp"
    make_decode(exp, "tri1", "test", "%WER 12.00 [ 12 / 100, 1 ins, 2 del, 9 sub ]\n%SER 30.00 [ 3 / 10 ]\n")
    make_decode(exp, "asr_blstm", "test", "%WER 2.00 [ 2 / 100, 0 ins, 1 del, 1 sub ]\n%SER 10.00 [ 1 / 10 ]\n",
                "%CER 1.50 [ 6 / 400, 1 ins, 2 del, 3 sub ]\n")
    make_decode(exp, "asr_blstm", "dev", "%WER 3.00 [ 3 / 100, 1 ins, 1 del, 1 sub ]\n%SER 20.00 [ 2 / 10 ]\n")
    (exp / "asr_blstm" / "decode_broken").mkdir()  # a decode that was never scored is skipped
    assert [(r.system, r.test_set) for r in collect_results(exp)] == [
        ("asr_blstm", "dev"), ("asr_blstm", "test"), ("tri1", "test")]

    out = tmp_path / "RESULTS.md"
    assert main(["make-results", str(exp), "--title", "Digits"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "# Digits"
    assert lines[2] == "| System | Test set | WER (%) | Errors / words | Ins / del / sub | SER (%) | CER (%) |"
    assert lines[4:7] == [
        "| asr_blstm | dev | 3.00 | 3 / 100 | 1 / 1 / 1 | 20.00 | - |",
        "| asr_blstm | test | 2.00 | 2 / 100 | 0 / 1 / 1 | 10.00 | 1.50 |",
        "| tri1 | test | 12.00 | 12 / 100 | 1 / 2 / 9 | 30.00 | - |",
    ]
    assert "%WER 12.00 [ 12 / 100, 1 ins, 2 del, 9 sub ] exp/tri1/decode_test/wer" in lines
    assert "| tri1 | test |" in capsys.readouterr().out

    other = tmp_path / "elsewhere" / "R.md"
    assert main(["make-results", str(exp), "-o", str(other)]) == 0
    assert other.read_text().startswith("# Results\n")


def test_make_results_errors(tmp_path, capsys):
    exp = tmp_path / "exp"
    (exp / "sys" / "decode_test").mkdir(parents=True)
    assert main(["make-results", str(exp)]) == 1
    assert "no results found" in capsys.readouterr().err
    assert not (tmp_path / "RESULTS.md").exists()
    make_decode(exp, "sys", "test", "garbage\n")
    assert main(["make-results", str(exp)]) == 1
    assert "decode_test/wer: no '%WER" in capsys.readouterr().err
    assert main(["make-results", str(tmp_path / "missing")]) == 1


def make_system(exp, name, kind, done=None, tensors=None):
    write(exp / name / "config.yaml", f"kind: {kind}\nseed: 1\n")
    if done is not None:
        write(exp / name / "train.done", json.dumps(done) + "\n")
    if tensors is not None:
        save_file(tensors, str(exp / name / "model.safetensors"))


def make_scored(exp, system, name, wer, rtf_logs=()):
    make_decode(exp, system, name, f"%WER {wer} [ 1 / 100, 0 ins, 0 del, 1 sub ]\n%SER 10.00 [ 1 / 10 ]\n")
    if rtf_logs:
        write(exp / system / f"decode_{name}" / "log" / "decode.log", "".join(
            f"2025-01-01 10:00:00,000 INFO speech.asr.decode: decoded 10 utterances ({audio} s of audio) in 0.4 s "
            f"(RTF {rtf}) -> exp/{system}/decode_{name}/text\n" for audio, rtf in rtf_logs))


def make_recipe_exp(tmp_path):
    """Two model dirs (an asr model with three searches, an hmm) and a dir that is no model."""
    exp = tmp_path / "exp"
    make_system(exp, "blstm_ctc", "asr", {"best_epoch": 3, "seconds": 45.2},
                {"w": torch.zeros(250, 4), "b": torch.zeros(300)})
    make_scored(exp, "blstm_ctc", "dev", "3.00", [(100.0, "0.002")])
    make_scored(exp, "blstm_ctc", "test", "2.00", [(300.0, "0.004")])
    # a second run appended to the log: its line counts
    make_scored(exp, "blstm_ctc", "test_lexicon", "1.50", [(300.0, "0.500"), (300.0, "0.010")])
    make_scored(exp, "blstm_ctc", "test_wfst", "1.40")
    # decoded in two jobs (decode-asr --nj 2): their logs together, a stale single-job log ignored
    make_scored(exp, "blstm_ctc", "dev_wfst", "2.90", [(50.0, "0.900")])
    for job, (audio, rtf) in enumerate([(60.0, "0.010"), (40.0, "0.020")], 1):
        time.sleep(0.01)  # the jobs' logs are newer
        write(exp / "blstm_ctc" / "decode_dev_wfst" / "log" / f"decode.{job}.log",
              f"# Started\nINFO speech.decode: decoded 5 utterances ({audio} s of audio) in 0.4 s (RTF {rtf}) -> x\n")
    make_system(exp, "mono", "hmm", {"pdfs": 3, "gaussians": 12, "seconds": 3725.4})
    make_scored(exp, "mono", "dev", "9.00")
    make_scored(exp, "mono", "test", "10.00", [(300.0, "0.0123")])
    make_scored(exp, "scratch", "test", "50.00")  # no config.yaml: in the decode table only
    return exp


def test_make_results_comparison_table(tmp_path):
    exp = make_recipe_exp(tmp_path)
    assert main(["make-results", str(exp), "--title", "Digits"]) == 0
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    assert lines[:9] == [
        "# Digits",
        "",
        "| System | dev WER (%) | test WER (%) | Training time | Decoding RTF | Model size (stored values) |",
        "|---|---|---|---|---|---|",
        "| blstm_ctc greedy | 3.00 | 2.00 | 0:00:45 | 0.0035 | 1.3 k (0.0053 MB) |",
        "| blstm_ctc + lexicon | - | 1.50 | 0:00:45 | 0.0100 | 1.3 k (0.0053 MB) |",
        "| blstm_ctc + WFST | 2.90 | 1.40 | 0:00:45 | 0.0140 | 1.3 k (0.0053 MB) |",
        "| mono (HCLG) | 9.00 | 10.00 | 1:02:05 | 0.0123 | n/a |",
        "",
    ]
    assert lines[9].startswith("Training time (h:mm:ss) from train.done; decoding RTF: ")
    assert lines[11] == "| System | Test set | WER (%) | Errors / words | Ins / del / sub | SER (%) |"
    assert "| scratch | test | 50.00 | 1 / 100 | 0 / 0 / 1 | 10.00 |" in lines
    assert "| blstm_ctc | test_lexicon | 1.50 | 1 / 100 | 0 / 0 / 1 | 10.00 |" in lines

    assert main(["make-results", str(exp), "--sets", "test", "dev", "--systems", "mono", "blstm_ctc"]) == 0
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    assert [line.split(" | ")[:3] for line in lines[2:9]] == [
        ["| System", "test WER (%)", "dev WER (%)"], ["|---|---|---|---|---|---|"],
        ["| mono (HCLG)", "10.00", "9.00"], ["| blstm_ctc greedy", "2.00", "3.00"],
        ["| blstm_ctc + lexicon", "1.50", "-"], ["| blstm_ctc + WFST", "1.40", "2.90"], [""]]


def test_make_results_comparison_sets_and_searches_with_underscores(tmp_path):
    exp = tmp_path / "exp"
    make_system(exp, "tri", "hmm")  # no train.done, no weights
    make_scored(exp, "tri", "test_clean", "4.00")
    make_scored(exp, "tri", "test_clean_lm", "3.00")
    make_scored(exp, "tri", "test_other", "8.00")
    assert main(["make-results", str(exp)]) == 0
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    assert lines[2:6] == [
        "| System | test_clean WER (%) | test_other WER (%) | Training time | Decoding RTF "
        "| Model size (stored values) |",
        "|---|---|---|---|---|---|",
        "| tri (HCLG) | 4.00 | 8.00 | n/a | n/a | n/a |",
        "| tri (HCLG) + LM | 3.00 | - | n/a | n/a | n/a |",
    ]


def test_make_results_comparison_errors_name_the_file(tmp_path, capsys):
    exp = make_recipe_exp(tmp_path)

    def error(*args):
        assert main(["make-results", str(exp), *args]) == 1
        assert not (tmp_path / "RESULTS.md").exists()
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        return err

    assert "--systems: scratch in" in error("--systems", "mono", "scratch")
    assert "--systems: no scored decode dir of nosuch in" in error("--systems", "nosuch")
    assert "--sets: no scored decode dir of eval" in error("--sets", "test", "eval")
    write(exp / "mono" / "train.done", '{"seconds": "long"}\n')
    assert f"{exp / 'mono' / 'train.done'}: 'seconds' is 'long', not a number" in error()
    write(exp / "mono" / "train.done", "not json\n")  # not a done marker of ours: no training time
    assert main(["make-results", str(exp)]) == 0
    assert "| mono (HCLG) | 9.00 | 10.00 | n/a | 0.0123 | n/a |" in (tmp_path / "RESULTS.md").read_text()
    (tmp_path / "RESULTS.md").unlink()
    (exp / "blstm_ctc" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert f"{exp / 'blstm_ctc' / 'model.safetensors'}: not a safetensors file (" in error()
    write(exp / "blstm_ctc" / "config.yaml", "seed: 1\n")
    assert f"{exp / 'blstm_ctc' / 'config.yaml'}: no 'kind:' line" in error()
