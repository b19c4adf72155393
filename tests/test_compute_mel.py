"""speech compute-mel: the TTS log-mels of a data dir as Kaldi ark/scp, with mel.yaml beside
feats.scp; skipping, recomputing on another config, bad audio, and ASR stages refusing mels."""

from __future__ import annotations


import kaldiio
import numpy as np

from speech.audio import load_wav_scp_entry
from speech.cli import main
from speech.data.combine import combine_data_dirs
from speech.data.subset import subset_data_dir
from speech.fileio import read_key_value
from speech.tts.mel import MelConfig, MelExtractor, check_same, load_mel_config
from support.cli import fails_in_one_line
from support.mel_dirs import MEL_YAML, UTTS, make_data_dir

def test_mels_of_a_data_dir_in_two_jobs_then_skip_then_another_config(tmp_path, capsys):
    data = make_data_dir(tmp_path)
    (data / "feature_config.yaml").write_text("type: fbank\n")  # left by an earlier compute-fbank
    assert main(["compute-mel", str(data), "--config", str(MEL_YAML), "--nj", "2", "--feat-dir", str(tmp_path / "mel"),
                 "--log-dir", str(tmp_path / "log")]) == 0

    cfg = load_mel_config(MEL_YAML)
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    num_frames = read_key_value(data / "utt2num_frames")
    assert list(feats) == sorted(UTTS) and list(num_frames) == sorted(UTTS)
    extract = MelExtractor(cfg)
    for utt in UTTS:
        samples = load_wav_scp_entry(str(tmp_path / "wavs" / f"{utt}.wav"), cfg.sample_rate)
        assert feats[utt].dtype == np.float32 and feats[utt].shape == (1 + len(samples) // cfg.hop_length, cfg.n_mels)
        np.testing.assert_allclose(feats[utt], extract(samples), atol=1e-5)
        assert int(num_frames[utt]) == len(feats[utt])
    check_same(load_mel_config(data / "mel.yaml"), cfg, str(data / "mel.yaml"), str(MEL_YAML))
    assert not (data / "feature_config.yaml").exists()  # not ASR features any more
    assert {p.name for p in (tmp_path / "mel").iterdir()} == {f"raw_mel_data.{j}.{e}" for j in (1, 2)
                                                               for e in ("ark", "scp")}
    assert "done: " in (tmp_path / "log" / "make_mel.2.log").read_text()

    capsys.readouterr()
    stamp = (data / "feats.scp").stat().st_mtime_ns
    assert main(["compute-mel", str(data), "--config", str(MEL_YAML), "--nj", "2", "--feat-dir", str(tmp_path / "mel"),
                 "--log-dir", str(tmp_path / "log")]) == 0
    assert "skipping" in capsys.readouterr().out and (data / "feats.scp").stat().st_mtime_ns == stamp

    # another config is not "complete": recomputed, recorded
    assert main(["compute-mel", str(data), "--config", str(MEL_YAML), "--nj", "1", "hop_length=256", "n_mels=40"]) == 0
    assert "skipping" not in capsys.readouterr().out
    mel = kaldiio.load_mat(read_key_value(data / "feats.scp")["spk2-a"])
    assert mel.shape == (1 + int(0.77 * 16000) // 256, 40)
    assert load_mel_config(data / "mel.yaml") == MelConfig(hop_length=256, n_mels=40)


def test_mel_yaml_goes_wherever_feats_scp_goes(tmp_path):
    data = make_data_dir(tmp_path)
    assert main(["compute-mel", str(data), "--nj", "1"]) == 0
    sub = subset_data_dir(data, tmp_path / "sub", first=2)
    assert sub.feats_scp is not None and (tmp_path / "sub" / "mel.yaml").read_bytes() == (data / "mel.yaml").read_bytes()
    subset_data_dir(data, tmp_path / "rest", last=1)
    combine_data_dirs(tmp_path / "both", [tmp_path / "sub", tmp_path / "rest"])
    assert (tmp_path / "both" / "mel.yaml").read_bytes() == (data / "mel.yaml").read_bytes()
    # compute-fbank over a data dir of mels replaces them, and the mel config with them
    assert main(["compute-fbank", str(tmp_path / "sub"), "--nj", "1"]) == 0
    assert not (tmp_path / "sub" / "mel.yaml").exists() and (tmp_path / "sub" / "feature_config.yaml").exists()


def test_bad_wav_is_one_line_naming_the_log_and_the_log_names_the_file(tmp_path, capsys):
    data = make_data_dir(tmp_path)
    bad = tmp_path / "wavs" / "spk1-b.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt not audio at all")
    fails_in_one_line(capsys, ["compute-mel", str(data), "--nj", "2"], "make_mel.1.log")
    log = (data / "log" / "make_mel.1.log").read_text()
    assert "spk1-b" in log and str(bad) in log and "Traceback" not in log
    assert not (data / "feats.scp").exists() and not (data / "mel.yaml").exists()


def test_bad_mel_config_is_one_line(tmp_path, capsys):
    data = make_data_dir(tmp_path)
    fails_in_one_line(capsys, ["compute-mel", str(data), "fmax=12000"], "fmax=12000.0 is out of range")
    fails_in_one_line(capsys, ["compute-mel", str(data), "nope=1"], "nope")


def test_train_asr_refuses_a_data_dir_of_mels(tmp_path, capsys):
    data = make_data_dir(tmp_path)
    assert main(["compute-mel", str(data), "--nj", "1"]) == 0
    capsys.readouterr()
    fails_in_one_line(capsys, ["train-asr", "--train-dir", str(data), "--dev-dir", str(data), "--lang-dir",
                               str(tmp_path), "--exp-dir", str(tmp_path / "exp")], "TTS log-mels", "compute-fbank")
