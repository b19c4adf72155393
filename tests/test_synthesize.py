"""speech train-tts, speech synthesize and the Synthesizer API on a tiny acoustic model:
the model dir, audio of the predicted length, speed, the text-file mode, and the one-line
errors that leave no wav behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.cli import main
from speech.config import read_mapping
from speech.errors import SpeechError
from speech.fileio import read_key_value
from speech.model_dir import load_model, read_kind
from speech.tts.frontend import token_ids
from speech.tts.synthesize import Synthesizer
from speech.tts.tts_durations import read_durations

from support.cli import fails_in_one_line
from support.mel_dirs import make_mel_dir
from support.tts_dirs import train_tiny_tts

HOP, RATE = 200, 16000


@pytest.fixture(scope="module")
def tiny_tts(tmp_path_factory):
    return train_tiny_tts(tmp_path_factory.mktemp("tts"))


def test_train_tts_makes_a_model_dir_that_names_its_vocoder(tiny_tts):
    kind, cfg = read_kind(tiny_tts)
    assert kind == "tts" and cfg["vocoder"] == "griffinlim" and cfg["model"]["num_phones"] > 40
    done = json.loads((tiny_tts / "train.done").read_text())
    assert len(done["history"]) == 30
    assert read_mapping(tiny_tts / "mel.yaml", "mel")["hop_length"] == HOP


def test_the_api_speaks_for_the_predicted_frames_and_speed_shortens_it(tiny_tts):
    tts = Synthesizer.from_dir(tiny_tts)
    record = []
    from speech.tts.synthesize import read_text

    samples = np.concatenate(list(tts.stream_sentences(read_text("The cat sat. The dog ran."), record)))
    assert len(record) == 2  # two sentences
    assert samples.dtype == np.float32 and len(samples) == sum(u.log_mel.shape[0] for u in record) * HOP
    assert all(u.log_mel.shape[0] == sum(u.durations) for u in record)
    one, rate = tts.synthesize("The cat sat on the mat.")
    assert rate == RATE
    fast, _ = Synthesizer.from_dir(tiny_tts, speed=2.0).synthesize("The cat sat on the mat.")
    # every duration halved, each rounded: within a frame per token of half the length
    assert abs(len(fast) - len(one) / 2) <= 20 * HOP
    assert len(fast) < 0.75 * len(one)


def test_synthesize_cli_writes_one_wav_or_a_data_dir(tiny_tts, tmp_path):
    wav = tmp_path / "x.wav"
    assert main(["synthesize", "The birch canoe slid on the smooth planks.", "-o", str(wav), "--model",
                 str(tiny_tts)]) == 0
    audio, rate = sf.read(wav)
    assert rate == RATE and len(audio) > 0 and len(audio) % HOP == 0
    lines = tmp_path / "lines.txt"
    lines.write_text("a The cat sat.\nb Is the mat red? It is, on 3 May.\n")
    out = tmp_path / "out"
    assert main(["synthesize", "--text-file", str(lines), "--out-dir", str(out), "--model", str(tiny_tts),
                 "--vocoder", "griffinlim"]) == 0
    assert set(read_key_value(out / "wav.scp")) == {"a", "b"}
    table = read_durations(out)
    for utt in ("a", "b"):
        toks, frames = table[utt]
        assert sf.info(str(out / f"{utt}.wav")).frames == sum(frames) * HOP
    assert "?" in {t.phone for t in table["b"][0]}
    done = json.loads((out / "synthesize.done").read_text())
    assert done["utterances"] == 2 and done["total_rtf"] > 0
    before = (out / "a.wav").stat().st_mtime_ns
    assert main(["synthesize", "--text-file", str(lines), "--out-dir", str(out), "--model", str(tiny_tts)]) == 0
    assert (out / "a.wav").stat().st_mtime_ns == before  # resumed: nothing to redo
    assert json.loads((out / "synthesize.done").read_text()) == done  # ... and the speeds of the run that made them


def test_synthesize_errors_are_one_line_and_leave_no_wav(tiny_tts, tmp_path, capsys):
    wav = tmp_path / "x.wav"
    model = ["--model", str(tiny_tts)]
    fails_in_one_line(capsys, ["synthesize", "   ", "-o", str(wav), *model], "empty")
    assert main(["synthesize", "☃ ☃", "-o", str(wav), *model]) == 1
    warning, error = capsys.readouterr().err.strip().splitlines()  # what was dropped, then why it fails
    assert "dropped characters the frontend cannot read: '☃'" in warning
    assert error.startswith("speech synthesize: error: ") and "nothing to pronounce" in error
    fails_in_one_line(capsys, ["synthesize", "Hello.", *model], "-o OUT.wav")
    fails_in_one_line(capsys, ["synthesize", "Hello.", "-o", str(wav), "--speed", "0", *model], "--speed 0")
    fails_in_one_line(capsys, ["synthesize", "Hello.", "-o", str(wav), "--model", str(tmp_path / "none")],
                      "not a trained model directory")
    lines = tmp_path / "lines.txt"
    lines.write_text("a The cat sat.\nb ...\n")
    fails_in_one_line(capsys, ["synthesize", "--text-file", str(lines), "--out-dir", str(tmp_path / "out"), *model],
                      f"{lines}:2 (b)")
    assert not wav.exists() and not (tmp_path / "out").exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fails_in_one_line(capsys, ["synthesize", "--text-file", str(empty), "--out-dir", str(tmp_path / "out"), *model],
                      "no lines")
    assert not (tmp_path / "out").exists()
    asr_like = make_mel_dir(tmp_path / "m")  # a data dir, not a vocoder
    fails_in_one_line(capsys, ["synthesize", "Hello.", "-o", str(wav), *model, "--vocoder", str(asr_like)],
                      "not a trained model directory")
    vocoder_like = tmp_path / "voc"
    vocoder_like.mkdir()
    (vocoder_like / "config.yaml").write_text("kind: vocoder\n")
    fails_in_one_line(capsys, ["synthesize", "Hello.", "-o", str(wav), "--model", str(vocoder_like)],
                      "kind 'vocoder'", "speech train-tts")
    with pytest.raises(SpeechError, match="empty"):
        Synthesizer.from_dir(tiny_tts).synthesize("")
    assert not wav.exists()


def test_train_tts_refuses_data_without_durations(tmp_path, capsys):
    data = make_mel_dir(tmp_path / "m")
    fails_in_one_line(capsys, ["train-tts", "--train-dir", str(data), "--dev-dir", str(data), "--exp-dir",
                               str(tmp_path / "exp"), "--device", "cpu"], "tokens: no such file", "tts-durations")
    fails_in_one_line(capsys, ["train-tts", "--train-dir", str(data), "--dev-dir", str(data), "--exp-dir",
                               str(tmp_path / "exp"), "model.dropout=2"], "model: dropout")


def test_evaluate_durations_compares_predicted_with_aligned_frames(tiny_tts, capsys):
    data = tiny_tts.parent / "train"
    assert main(["evaluate-durations", str(tiny_tts), str(data)]) == 0
    assert "mean absolute error" in capsys.readouterr().out
    result = json.loads((tiny_tts / "durations_train.json").read_text())
    table = read_durations(data)
    phones = sum(t.position != 0 for toks, _ in table.values() for t in toks)
    assert result["utterances"] == len(table) and result["phones"]["tokens"] == phones
    assert result["pauses"]["tokens"] == sum(len(toks) for toks, _ in table.values()) - phones
    # the figures are those of the model's own predictions, computed here again
    _, model = load_model(tiny_tts, "tts")
    errors, ratios = [], []
    for toks, frames in table.values():
        ids = [torch.tensor([x]) for x in token_ids(toks)]
        predicted = model.infer(*ids, torch.tensor([len(toks)]))[1][0].tolist()
        errors += [abs(p - f) for p, f, t in zip(predicted, frames, toks) if t.position != 0]
        ratios.append(sum(predicted) / sum(frames))
    assert result["phones"]["mae_ms"] == pytest.approx(12.5 * np.mean(errors), abs=0.01)
    assert result["length_ratio"] == pytest.approx(np.mean(ratios), abs=1e-3)
    assert -1 <= result["phones"]["correlation"] <= 1


def test_plot_spectrograms_draws_the_token_boundaries(tiny_tts, tmp_path, capsys):
    out = tmp_path / "out"
    lines = tmp_path / "lines.txt"
    lines.write_text("a The cat sat.\n")
    assert main(["synthesize", "--text-file", str(lines), "--out-dir", str(out), "--model", str(tiny_tts)]) == 0
    png = tmp_path / "x.png"
    assert main(["plot-spectrograms", str(png), f"tts={out / 'a.wav'}", "--durations", f"tts={out}", "--utt",
                 "a"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()  # synthesize's log lines
    fails_in_one_line(capsys, ["plot-spectrograms", str(png), f"tts={out / 'a.wav'}", "--durations", f"tts={out}",
                               "--utt", "zz"], "no utterance 'zz'")
    fails_in_one_line(capsys, ["plot-spectrograms", str(png), f"tts={out / 'a.wav'}", "--durations", f"x={out}",
                               "--utt", "a"], "NAME one of the panels")
