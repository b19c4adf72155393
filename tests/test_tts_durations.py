"""speech tts-durations: the frontend's tokens of what was read, timed by an HMM alignment
in mel frames (pauses where the text or the speaker put them), and the dropped utterances."""

from __future__ import annotations

import pytest

from speech.alignment_score import Phone
from speech.cli import main
from speech.errors import SpeechError
from speech.fileio import read_key_value, write_key_value
from speech.tts import frontend
from speech.tts.frontend import Token
from speech.tts.mel import MelConfig, save_mel_config
from speech.tts.tts_durations import (Dropped, low_outliers, parse_token_text, read_durations, token_text,
                                      utterance_durations)

from support.cli import fails_in_one_line

FRAME = 0.0125  # the default mel config's 200 samples at 16 kHz

# "the cat, sat." as an aligner times it (seconds): silences at the edges and after "cat"
PHONES = [("SIL", 0.0, 0.3), ("DH", 0.3, 0.35), ("AH", 0.35, 0.4), ("K", 0.4, 0.5), ("AE", 0.5, 0.6),
          ("T", 0.6, 0.7), ("SIL", 0.7, 0.9), ("S", 0.9, 1.0), ("AE", 1.0, 1.1), ("T", 1.1, 1.2),
          ("SIL", 1.2, 1.5)]
WORDS = [("THE", 0.3, 0.4), ("CAT", 0.4, 0.7), ("SAT", 0.9, 1.2)]


def spans(rows):
    return [Phone(*r) for r in rows]


def test_phones_pauses_and_edges_get_the_aligned_frames():
    toks, durs = utterance_durations(frontend.analyse("the cat, sat."), spans(PHONES), spans(WORDS), 121, FRAME)
    assert frontend.format_tokens(toks) == "SIL DH AH0 K AE1 T , S AE1 T . SIL"
    # 0.3 s of leading silence = 24 frames; the comma takes the pause after "cat"; the full
    # stop none (the trailing silence is the last SIL's, which ends at the last mel frame)
    assert durs == [24, 4, 4, 8, 8, 8, 16, 8, 8, 8, 0, 121 - 96]
    assert sum(durs) == 121
    assert [t.position for t in toks] == [0, 1, 3, 1, 2, 3, 0, 1, 2, 3, 0, 0]


def test_a_pause_without_punctuation_becomes_sil_and_an_unmade_pause_gets_no_frame():
    toks, durs = utterance_durations(frontend.analyse("the cat sat"), spans(PHONES), spans(WORDS), 121, FRAME)
    assert frontend.format_tokens(toks) == "SIL DH AH0 K AE1 T SIL S AE1 T SIL"
    assert durs[6] == 16
    no_pause = [("SIL", 0.0, 0.3), ("DH", 0.3, 0.35), ("AH", 0.35, 0.4), ("K", 0.4, 0.5), ("AE", 0.5, 0.6),
                ("T", 0.6, 0.9), ("S", 0.9, 1.0), ("AE", 1.0, 1.1), ("T", 1.1, 1.5)]
    words = [("THE", 0.3, 0.4), ("CAT", 0.4, 0.9), ("SAT", 0.9, 1.5)]
    toks, durs = utterance_durations(frontend.analyse("the cat, sat."), spans(no_pause), spans(words), 121, FRAME)
    assert frontend.format_tokens(toks) == "SIL DH AH0 K AE1 T , S AE1 T . SIL"
    # no pause after "cat", no trailing silence: the comma and the last SIL get no frame, the
    # last phone runs to the last mel frame
    assert durs[6] == 0 and durs[-1] == 0 and durs[-3] == 121 - 88
    assert sum(durs) == 121


def test_the_aligned_pronunciation_is_kept_with_cmudicts_stress():
    # "the" aligned as DH IY (CMUdict's second pronunciation, DH IY0)
    rows = [("DH", 0.0, 0.1), ("IY", 0.1, 0.2), ("K", 0.2, 0.3), ("AE", 0.3, 0.4), ("T", 0.4, 0.5)]
    toks, _ = utterance_durations(frontend.analyse("the cat"), spans(rows), spans([("THE", 0.0, 0.2),
                                                                                   ("CAT", 0.2, 0.5)]), 41, FRAME)
    assert frontend.format_tokens(toks) == "SIL DH IY0 K AE1 T SIL"


def test_words_the_frontend_reads_otherwise_are_dropped():
    with pytest.raises(Dropped, match="frontend-words-differ"):
        utterance_durations(frontend.analyse("the dog, sat."), spans(PHONES), spans(WORDS), 121, FRAME)


def test_token_text_round_trips_and_refuses_what_it_did_not_write():
    toks = frontend.tokens(frontend.analyse("Hello, world?"))
    line = token_text(toks)
    assert line == "SIL HH_B AH0_I L_I OW1_E , W_B ER1_I L_I D_E ? SIL"
    assert parse_token_text(line, "x") == toks
    assert parse_token_text("AH0_S", "x") == [Token("AH", 1, 4)]
    with pytest.raises(SpeechError, match="x: 'QQ_B' is not a token"):
        parse_token_text("SIL QQ_B", "x")


def test_low_outliers_are_far_under_the_median():
    logliks = {f"u{i}": -50.0 + 0.1 * i for i in range(20)} | {"bad": -80.0}
    assert low_outliers(logliks, 5.0) == {"bad"}
    assert low_outliers({"a": -1.0, "b": -1.0, "c": -9.0}, 5.0) == set()  # no spread: nothing to judge by


def write_alignment(align_dir, data_dir, utts):
    """An align-hmm output dir (CTMs, loglik) and a mel data dir (spoken, utt2num_frames)
    of ``utts``: utt -> (spoken, loglik); each utterance is 'the cat, sat.' as PHONES times it."""
    align_dir.mkdir()
    data_dir.mkdir()
    phone_lines, word_lines = [], []
    for utt in utts:
        phone_lines += [f"{utt} 1 {a:.2f} {b - a:.2f} {p} 1.0\n" for p, a, b in PHONES]
        word_lines += [f"{utt} 1 {a:.2f} {b - a:.2f} {w.lower()} 1.0\n" for w, a, b in WORDS]
    (align_dir / "phones.ctm").write_text("".join(phone_lines))
    (align_dir / "words.ctm").write_text("".join(word_lines))
    write_key_value(align_dir / "loglik", {u: f"{ll} 150" for u, (_, ll) in utts.items()})
    write_key_value(data_dir / "spoken", {u: s for u, (s, _) in utts.items()} | {"lost": "the cat, sat."})
    write_key_value(data_dir / "utt2num_frames", {u: "121" for u in [*utts, "lost"]})
    save_mel_config(MelConfig(), data_dir / "mel.yaml")


def test_the_stage_writes_tokens_and_durations_and_says_what_it_dropped(tmp_path, capsys):
    utts = {f"u{i:02d}": ("The cat, sat.", -50.0 + 0.1 * i) for i in range(10)}
    utts["bad"] = ("The cat, sat.", -90.0)  # a low outlier
    utts["other"] = ("The dog, sat.", -50.0)  # not the words aligned
    align, data = tmp_path / "ali", tmp_path / "data"
    write_alignment(align, data, utts)
    assert main(["tts-durations", str(align), str(data)]) == 0
    out = capsys.readouterr().out
    assert "10 of 13 utterances" in out and "dropped 3 (1 frontend-words-differ, 1 low-loglik, 1 not-aligned)" in out
    dropped = read_key_value(data / "durations_dropped")
    assert set(dropped) == {"bad", "other", "lost"} and dropped["lost"] == "not-aligned"
    table = read_durations(data)
    assert set(table) == {f"u{i:02d}" for i in range(10)}
    toks, frames = table["u00"]
    assert frontend.format_tokens(toks) == "SIL DH AH0 K AE1 T , S AE1 T . SIL" and sum(frames) == 121
    assert main(["tts-durations", str(align), str(data)]) == 0
    assert "skipping" in capsys.readouterr().out


def test_stage_errors_are_one_line(tmp_path, capsys):
    fails_in_one_line(capsys, ["tts-durations", str(tmp_path / "nothing"), str(tmp_path)], "phones.ctm: no such file",
                      "speech align-hmm")
    align, data = tmp_path / "ali", tmp_path / "data"
    write_alignment(align, data, {"u1": ("Dogs bark.", -50.0)})
    fails_in_one_line(capsys, ["tts-durations", str(align), str(data)], "no utterance got durations",
                      "durations_dropped")
    write_key_value(data / "tokens", {"u1": "SIL ZZ_B SIL"})
    write_key_value(data / "durations", {"u1": "1 2 3"})
    with pytest.raises(SpeechError, match=r"tokens \(u1\): 'ZZ_B' is not a token"):
        read_durations(data)
    write_key_value(data / "tokens", {"u1": "SIL AH0_S SIL"})
    write_key_value(data / "durations", {"u1": "1 2"})
    with pytest.raises(SpeechError, match=r"durations \(u1\): 2 durations for 3 tokens"):
        read_durations(data)
