"""speech train-vocoder and speech vocode end to end on a tiny mel data dir: the model dir,
skipping, resuming a killed copy-synthesis, Griffin-Lim, and one-line errors for missing
mels, mels of another config, a model dir of the wrong kind and unreadable weights."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
import yaml

from speech.cli import main
from speech.fileio import read_key_value
from speech.tts.generate import Vocoder
from speech.tts.mel import load_mel_config
from support.cli import fails_in_one_line
from support.mel_dirs import MEL_YAML, UTTS, make_data_dir, make_mel_dir

TINY = ["model.hidden=16", "model.fc=16", "model.cond_channels=8", "model.embed_dim=4", "model.cond_blocks=1",
        "trainer.epochs=1", "updates_per_epoch=2", "batch_size=2", "dev_segments=2", "segment_frames=2",
        "trainer.tensorboard=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocoder")
    data = make_mel_dir(root)
    exp = root / "exp"
    assert main(["train-vocoder", "--train-dir", str(data), "--dev-dir", str(data), "--exp-dir", str(exp),
                 "--device", "cpu", *TINY]) == 0
    return data, exp


def test_train_vocoder_makes_a_model_dir_and_skips_when_done(trained, capsys):
    data, exp = trained
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["kind"] == "vocoder" and config["model"]["hidden"] == 16
    assert load_mel_config(exp / "mel.yaml") == load_mel_config(MEL_YAML)
    assert (exp / "model.safetensors").is_file() and (exp / "train.done").is_file()
    capsys.readouterr()
    assert main(["train-vocoder", "--train-dir", str(data), "--dev-dir", str(data), "--exp-dir", str(exp),
                 *TINY]) == 0
    assert "already trained" in capsys.readouterr().out


def test_vocode_writes_a_data_dir_of_wavs_and_resumes(trained, tmp_path, capsys):
    data, exp = trained
    out = tmp_path / "copy"
    assert main(["vocode", str(exp), str(data / "feats.scp"), str(out), "--target", "40", "--warmup", "5",
                 "--xfade", "10", "--batch", "3"]) == 0
    frames = read_key_value(data / "utt2num_frames")
    wavs = read_key_value(out / "wav.scp")
    assert sorted(wavs) == sorted(UTTS)
    for utt, path in wavs.items():
        info = sf.info(path)
        assert info.samplerate == 16000 and info.frames == int(frames[utt]) * 200
    assert read_key_value(out / "utt2spk") == read_key_value(data / "utt2spk")

    # a run killed after two utterances: the finished wavs stay, the missing one is made
    first, killed = sorted(wavs)[0], sorted(wavs)[-1]
    mtime = (out / "wav" / f"{first}.wav").stat().st_mtime_ns
    (out / "wav" / f"{killed}.wav").unlink()
    (out / "vocode.done").unlink()
    assert main(["vocode", str(exp), str(data), str(out)]) == 0
    assert (out / "wav" / f"{killed}.wav").is_file()
    assert (out / "wav" / f"{first}.wav").stat().st_mtime_ns == mtime
    capsys.readouterr()
    assert main(["vocode", str(exp), str(data), str(out)]) == 0
    assert "skipping" in capsys.readouterr().out


def test_the_python_api_loads_the_model_dir(trained):
    data, exp = trained
    import kaldiio

    mel = next(iter(kaldiio.load_scp(str(data / "feats.scp")).values()))
    voc = Vocoder.from_dir(exp)
    assert voc.mel.sample_rate == 16000
    assert voc(mel).shape == (mel.shape[0] * 200,)


def test_griffin_lim_and_naive_copy_synthesis(trained, tmp_path):
    data, exp = trained
    for extra in (["--vocoder", "griffinlim"], ["--naive"]):
        out = tmp_path / extra[-1]
        assert main(["vocode", str(exp), str(data), str(out), *extra]) == 0
        assert len(read_key_value(out / "wav.scp")) == len(UTTS)


def test_vocode_errors_are_one_line(trained, tmp_path, capsys):
    data, exp = trained
    no_mels = make_data_dir(tmp_path / "plain")
    fails_in_one_line(capsys, ["vocode", str(exp), str(no_mels), str(tmp_path / "o1")],
                      "feats.scp", "speech compute-mel")
    other = make_mel_dir(tmp_path / "other", "hop_length=160")
    fails_in_one_line(capsys, ["vocode", str(exp), str(other), str(tmp_path / "o2")],
                      "hop_length=160", "needs hop_length=200")

    wrong_kind = tmp_path / "asr_dir"
    shutil.copytree(exp, wrong_kind)
    (wrong_kind / "config.yaml").write_text((exp / "config.yaml").read_text().replace("kind: vocoder", "kind: asr"))
    fails_in_one_line(capsys, ["vocode", str(wrong_kind), str(data), str(tmp_path / "o3")],
                      "kind 'asr'", "needs kind 'vocoder'")

    broken = tmp_path / "broken"
    shutil.copytree(exp, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    fails_in_one_line(capsys, ["vocode", str(broken), str(data), str(tmp_path / "o4")],
                      "model.safetensors", "cannot read the weights")

    fails_in_one_line(capsys, ["train-vocoder", "--train-dir", str(no_mels), "--dev-dir", str(data),
                               "--exp-dir", str(tmp_path / "e"), *TINY], "no mels yet", "speech compute-mel")


def test_two_rank_torchrun_trains_a_vocoder(trained, tmp_path):
    import os
    import subprocess
    import sys

    from support.ports import free_port

    data, _ = trained
    exp = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
         "-m", "speech", "train-vocoder", "--train-dir", str(data), "--dev-dir", str(data), "--exp-dir", str(exp),
         "--device", "cpu", *TINY],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (exp / "model.safetensors").is_file() and (exp / "train.done").is_file()
    assert "x 2" in (exp / "log" / "train.log").read_text()  # both ranks trained
