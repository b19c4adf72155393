"""Kaldi-compatible fbank/MFCC (checked against torchaudio.compliance.kaldi) and the
compute-fbank / compute-mfcc stages on a tiny data directory."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from speech.config import load_config
from speech.errors import JobError, SpeechError
from speech.features import FeatureConfig, make_extractor
from speech.features.extract import compute_features, main_fbank
from speech.fileio import read_key_value


def speech_like(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """float32 [N] in [-1, 1]: harmonics of a gliding pitch, amplitude-modulated, plus noise
    and a silent stretch (so low-energy frames, where log features are touchy, are covered)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 20) if k * 160 < sample_rate / 2)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t))
    x[len(t) // 3 : len(t) // 3 + sample_rate // 5] = 1e-4 * rng.standard_normal(sample_rate // 5)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def torchaudio_reference(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    import torch
    import torchaudio.compliance.kaldi as kaldi

    torch.set_num_threads(1)
    common = dict(
        sample_frequency=cfg.sample_rate, frame_length=cfg.frame_length_ms, frame_shift=cfg.frame_shift_ms,
        dither=0.0, preemphasis_coefficient=cfg.preemphasis, window_type=cfg.window, snip_edges=cfg.snip_edges,
        remove_dc_offset=cfg.remove_dc_offset, round_to_power_of_two=cfg.round_to_power_of_two,
        num_mel_bins=cfg.num_mel_bins, low_freq=cfg.low_freq, high_freq=cfg.high_freq, use_energy=cfg.use_energy,
        raw_energy=cfg.raw_energy, energy_floor=cfg.energy_floor,
    )
    wave = torch.from_numpy(samples * 32768).unsqueeze(0)
    if cfg.type == "fbank":
        return kaldi.fbank(wave, **common).numpy()
    return kaldi.mfcc(wave, num_ceps=cfg.num_ceps, cepstral_lifter=cfg.cepstral_lifter, **common).numpy()


@pytest.mark.parametrize(
    "options",
    [
        dict(type="fbank"),
        dict(type="fbank", use_energy=True, window="hamming", snip_edges=False, preemphasis=0.0, energy_floor=1.0),
        dict(type="fbank", num_mel_bins=40, low_freq=64.0, high_freq=-400.0, frame_length_ms=20.0),
        dict(type="mfcc", num_mel_bins=23),
        dict(type="mfcc", num_mel_bins=40, num_ceps=20, use_energy=True, cepstral_lifter=0.0),
        dict(type="fbank", sample_rate=8000, num_mel_bins=40),
        dict(type="mfcc", sample_rate=8000, num_mel_bins=23, high_freq=3700.0),
    ],
    ids=["fbank80", "fbank-energy-hamming-nosnip", "fbank40-band", "mfcc", "mfcc20-energy", "fbank-8k", "mfcc-8k"],
)
def test_matches_torchaudio_kaldi(options):
    cfg = FeatureConfig(**options)
    samples = speech_like(1.3, cfg.sample_rate)
    ours = make_extractor(cfg)(samples)
    ref = torchaudio_reference(samples, cfg)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    # Both are float32 implementations of Kaldi; they differ only by rounding.
    np.testing.assert_allclose(ours, ref, atol=5e-3, rtol=1e-3)
    assert np.abs(ours - ref).mean() < 3e-4


@pytest.mark.parametrize("snip_edges", [True, False])
def test_frame_counts_follow_kaldi(snip_edges):
    extract = make_extractor(FeatureConfig(snip_edges=snip_edges))
    assert extract.dim == 80
    rng = np.random.default_rng(1)
    for n in (399, 400, 401, 559, 560, 16000, 16079, 16080, 16081):
        feats = extract(0.1 * rng.standard_normal(n).astype(np.float32))
        expected = (1 + (n - 400) // 160 if n >= 400 else 0) if snip_edges else (n + 80) // 160
        assert feats.shape == (expected, 80), n


def test_dims_and_empty_input():
    assert make_extractor(FeatureConfig(type="fbank", use_energy=True)).dim == 81
    mfcc = make_extractor(FeatureConfig(type="mfcc", num_mel_bins=23))
    assert mfcc.dim == 13
    out = mfcc(np.zeros(100, dtype=np.float32))
    assert out.shape == (0, 13) and out.dtype == np.float32


def test_dither_is_reproducible_and_changes_features():
    samples = speech_like(0.5)
    plain = make_extractor(FeatureConfig())(samples)
    dithered = make_extractor(FeatureConfig(dither=1.0))
    a, b = dithered(samples), dithered(samples)
    np.testing.assert_array_equal(a, b)
    assert 1e-3 < np.abs(a - plain).max()
    # Digital silence becomes finite noise instead of log(epsilon) everywhere.
    silent = dithered(np.zeros(8000, dtype=np.float32))
    assert silent.min() > -15.0 > make_extractor(FeatureConfig())(np.zeros(8000, dtype=np.float32)).max()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(sample_rate=8000, num_mel_bins=256), "num_mel_bins too large"),
        (dict(high_freq=9000.0), "high-freq"),
        (dict(window="triangle"), "window 'triangle'"),
        (dict(type="plp"), "feature type 'plp'"),
        (dict(type="mfcc", num_mel_bins=10, num_ceps=13), "num_ceps"),
        (dict(frame_shift_ms=0.0), "frame_shift_ms"),
    ],
)
def test_bad_options_raise_speech_error(options, message):
    with pytest.raises(SpeechError, match=message):
        make_extractor(FeatureConfig(**options))


def test_extractor_module_does_not_import_torch():
    import subprocess

    code = "import sys, speech.features, speech.features.extract; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_configs_load():
    fbank = load_config(FeatureConfig, Path(__file__).parents[1] / "conf/features/fbank.yaml")
    mfcc = load_config(FeatureConfig, Path(__file__).parents[1] / "conf/features/mfcc.yaml")
    assert (fbank.type, make_extractor(fbank).dim) == ("fbank", 80)
    assert (mfcc.type, make_extractor(mfcc).dim) == ("mfcc", 13)


# --- the stage -----------------------------------------------------------------------------

UTTS = {  # utt -> (speaker, seconds)
    "spk1-a": ("spk1", 0.6), "spk1-b": ("spk1", 0.45), "spk2-a": ("spk2", 0.5), "spk2-b": ("spk2", 0.7),
}


def make_data_dir(root: Path, name: str = "train") -> tuple[Path, dict[str, np.ndarray]]:
    """A data dir of 4 utterances (2 speakers), one 16 kHz wav each."""
    data, wavs = root / name, root / "wavs"
    data.mkdir(parents=True)
    wavs.mkdir(exist_ok=True)
    audio = {}
    for i, (utt, (_, seconds)) in enumerate(UTTS.items()):
        audio[utt] = speech_like(seconds, seed=i)
        sf.write(wavs / f"{utt}.wav", audio[utt], 16000, subtype="FLOAT")
    (data / "wav.scp").write_text("".join(f"{u} {wavs / u}.wav\n" for u in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _) in UTTS.items()))
    (data / "spk2utt").write_text("spk1 spk1-a spk1-b\nspk2 spk2-a spk2-b\n")
    return data, audio


def test_stage_two_jobs_end_to_end(tmp_path, capsys):
    data, audio = make_data_dir(tmp_path)
    cfg = FeatureConfig()
    assert main_fbank([str(data), "--nj", "2", "--cmd", "local"]) == 0

    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    assert list(read_key_value(data / "feats.scp")) == sorted(UTTS)
    num_frames = {u: int(n) for u, n in read_key_value(data / "utt2num_frames").items()}
    extract = make_extractor(cfg)
    for utt, samples in audio.items():
        expected = extract(samples)
        assert feats[utt].dtype == np.float32 and feats[utt].shape == (1 + (len(samples) - 400) // 160, 80)
        np.testing.assert_array_equal(feats[utt], expected)  # uncompressed
        assert num_frames[utt] == len(expected)
    assert load_config(FeatureConfig, data / "feature_config.yaml") == cfg
    for j in (1, 2):
        assert (data / "data" / f"raw_fbank_train.{j}.ark").is_file()
        log = (data / "log" / f"make_fbank.{j}.log").read_text()
        assert f"make_fbank job {j}: 2 utterances" in log and "done: 2 utterances" in log and "(code 0)" in log
    assert not list((data / "data").glob(".*tmp"))

    capsys.readouterr()
    stamp = (data / "feats.scp").stat().st_mtime_ns
    assert main_fbank([str(data), "--nj", "2"]) == 0
    assert "skipping" in capsys.readouterr().out
    assert (data / "feats.scp").stat().st_mtime_ns == stamp

    assert main_fbank([str(data), "--nj", "2", "--force"]) == 0
    assert "skipping" not in capsys.readouterr().out
    assert (data / "feats.scp").stat().st_mtime_ns != stamp

    # Another config is not "complete": recomputed with the new dimension.
    assert main_fbank([str(data), "--nj", "2", "num_mel_bins=40"]) == 0
    assert "skipping" not in capsys.readouterr().out
    assert kaldiio.load_mat(read_key_value(data / "feats.scp")["spk2-b"]).shape[1] == 40
    assert load_config(FeatureConfig, data / "feature_config.yaml").num_mel_bins == 40

    # A run killed before the end (feats.scp short of an utterance) is redone, not skipped.
    lines = (data / "feats.scp").read_text().splitlines()
    (data / "feats.scp").write_text("\n".join(lines[:-1]) + "\n")
    assert compute_features(data, dataclasses.replace(cfg, num_mel_bins=40), nj=2)
    assert len(read_key_value(data / "feats.scp")) == 4


def test_stage_with_segments_and_resampling_via_cli(tmp_path):
    from speech.cli import main as cli_main

    rate = 22050  # recordings at another rate are resampled to the config's
    wav = tmp_path / "rec1.wav"
    sf.write(wav, speech_like(1.5, rate), rate, subtype="PCM_16")
    data = tmp_path / "segdata"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {wav}\n")
    (data / "segments").write_text("spk1-s1 rec1 0.00 0.70\nspk1-s2 rec1 0.70 1.50\n")
    (data / "utt2spk").write_text("spk1-s1 spk1\nspk1-s2 spk1\n")
    (data / "spk2utt").write_text("spk1 spk1-s1 spk1-s2\n")
    code = cli_main(["compute-mfcc", str(data), "--nj", "1", "--feat-dir", str(tmp_path / "mfcc"),
                     "--log-dir", str(tmp_path / "log"), "--config",
                     str(Path(__file__).parents[1] / "conf/features/mfcc.yaml")])
    assert code == 0
    num_frames = read_key_value(data / "utt2num_frames")
    assert num_frames == {"spk1-s1": str(1 + (11200 - 400) // 160), "spk1-s2": str(1 + (12800 - 400) // 160)}
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    assert {f.shape[1] for f in feats.values()} == {13}
    assert (tmp_path / "mfcc" / "raw_mfcc_segdata.1.ark").is_file() and (tmp_path / "log" / "make_mfcc.1.log").is_file()
    # compute-fbank with an mfcc config is refused, naming the config.
    assert cli_main(["compute-fbank", str(data), "--config", str(Path(__file__).parents[1] / "conf/features/mfcc.yaml")]) == 1


def test_bad_audio_fails_the_stage_naming_log_utterance_and_file(tmp_path):
    data, _ = make_data_dir(tmp_path)
    bad = tmp_path / "wavs" / "spk2-a.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    with pytest.raises(JobError, match=r"make_fbank\.2\.log") as err:
        main_fbank([str(data), "--nj", "2"])
    assert "make_fbank.1.log" not in str(err.value)
    log = (data / "log" / "make_fbank.2.log").read_text()
    assert "spk2-a" in log and str(bad) in log and "error: job 2" in log and "Traceback" not in log
    assert not (data / "feats.scp").exists() and not (data / "feature_config.yaml").exists()
    assert not list((data / "data").glob(".*tmp"))

    # Once the file is fixed, a re-run completes (nothing stale is taken as done).
    sf.write(bad, speech_like(0.5, seed=9), 16000)
    assert main_fbank([str(data), "--nj", "2"]) == 0
    assert len(read_key_value(data / "feats.scp")) == 4


@pytest.mark.parametrize("bad", [["--nj", "0", "--force"], ["--nj", "0", "num_mel_bins=40"]])
def test_bad_option_leaves_the_features_of_an_earlier_run(tmp_path, capsys, bad):
    from speech.cli import main as cli_main

    data, _ = make_data_dir(tmp_path)
    assert cli_main(["compute-fbank", str(data), "--nj", "1"]) == 0
    outputs = {name: (data / name).read_bytes() for name in ("feats.scp", "utt2num_frames", "feature_config.yaml")}
    capsys.readouterr()
    assert cli_main(["compute-fbank", str(data), *bad]) == 1
    err = capsys.readouterr().err
    assert "--nj must be at least 1 (got 0)" in err and len(err.strip().splitlines()) == 1
    assert {name: (data / name).read_bytes() for name in outputs} == outputs
