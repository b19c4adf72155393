"""CMVN statistics (Kaldi layout), normalisation, stats files and the compute-cmvn-stats stage."""

from __future__ import annotations

import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from speech.errors import DataDirError, SpeechError
from speech.features import apply_cmvn, read_stats
from speech.features.cmvn import accumulate_stats, compute_cmvn_stats, main, write_stats
from speech.fileio import read_key_value


def _random_feats(rng, num_utts: int, dim: int = 5) -> list[np.ndarray]:
    # Different means and scales per dimension, so a wrong axis or layout shows.
    return [
        (rng.standard_normal((int(rng.integers(20, 60)), dim)) * np.arange(1, dim + 1) + np.arange(dim) * 3)
        .astype(np.float32)
        for _ in range(num_utts)
    ]


def test_accumulate_stats_matches_numpy_sums_in_kaldi_layout():
    feats = _random_feats(np.random.default_rng(0), 4)
    stats = accumulate_stats(iter(feats))
    allf = np.concatenate(feats).astype(np.float64)
    assert stats.shape == (2, 6) and stats.dtype == np.float64
    np.testing.assert_allclose(stats[0, :-1], allf.sum(0), rtol=1e-12)
    np.testing.assert_allclose(stats[1, :-1], (allf**2).sum(0), rtol=1e-12)
    assert stats[0, -1] == len(allf) and stats[1, -1] == 0
    count = stats[0, -1]
    np.testing.assert_allclose(stats[0, :-1] / count, allf.mean(0), rtol=1e-10)
    np.testing.assert_allclose(stats[1, :-1] / count - (stats[0, :-1] / count) ** 2, allf.var(0), rtol=1e-8)
    # Stats of parts add up to the stats of the whole.
    np.testing.assert_allclose(accumulate_stats(feats[:2]) + accumulate_stats(feats[2:]), stats, rtol=1e-12)


def test_accumulate_stats_rejects_mixed_dimensions_and_no_input():
    with pytest.raises(ValueError, match="dimension"):
        accumulate_stats([np.zeros((3, 4)), np.zeros((3, 5))])
    with pytest.raises(ValueError, match="no features"):
        accumulate_stats([])


def test_apply_cmvn_gives_zero_mean_unit_variance():
    feats = np.concatenate(_random_feats(np.random.default_rng(1), 3))
    stats = accumulate_stats([feats])
    out = apply_cmvn(feats, stats)
    assert out.dtype == np.float32 and out.shape == feats.shape
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-5)
    mean_only = apply_cmvn(feats, stats, norm_vars=False)
    np.testing.assert_allclose(mean_only.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(mean_only.std(0), feats.std(0), rtol=1e-5)
    # A constant dimension (variance 0) is floored, not turned into inf/nan.
    feats[:, 2] = 7.0
    assert np.isfinite(apply_cmvn(feats, accumulate_stats([feats]))).all()
    with pytest.raises(ValueError, match="do not fit"):
        apply_cmvn(feats[:, :3], stats)


def test_stats_file_round_trip_is_a_kaldi_double_matrix(tmp_path):
    stats = accumulate_stats(_random_feats(np.random.default_rng(2), 2))
    path = tmp_path / "cmvn.ark"
    write_stats(path, stats)
    assert path.read_bytes()[:5] == b"\0BDM "  # binary double matrix, as compute-cmvn-stats writes
    np.testing.assert_array_equal(read_stats(path), stats)
    np.testing.assert_array_equal(kaldiio.load_mat(str(path)), stats)
    assert [p.name for p in tmp_path.iterdir()] == ["cmvn.ark"]  # no temporary left behind


def test_read_stats_names_a_file_that_is_not_stats(tmp_path):
    bad = tmp_path / "bad.ark"
    bad.write_text("not a matrix\n")
    with pytest.raises(SpeechError, match="bad.ark"):
        read_stats(bad)
    other = tmp_path / "other.ark"
    write_stats(other, np.zeros((3, 4)))
    with pytest.raises(SpeechError, match=r"other.ark.*not CMVN stats"):
        read_stats(other)


def _make_data_dir(root: Path, rng) -> tuple[Path, dict[str, np.ndarray], dict[str, str]]:
    """A data dir with feats.scp over 5 utterances of 2 speakers (no audio needed)."""
    data = root / "train"
    data.mkdir()
    utt2spk = {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkA-u3": "spkA", "spkB-u1": "spkB", "spkB-u2": "spkB"}
    feats = dict(zip(utt2spk, _random_feats(rng, len(utt2spk))))
    (data / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in utt2spk))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
    (data / "spk2utt").write_text("spkA spkA-u1 spkA-u2 spkA-u3\nspkB spkB-u1 spkB-u2\n")
    kaldiio.save_ark(str(root / "feats.ark"), feats, scp=str(data / "feats.scp"))
    return data, feats, utt2spk


def test_stage_writes_global_and_per_speaker_stats_and_skips_when_up_to_date(tmp_path, capsys):
    data, feats, utt2spk = _make_data_dir(tmp_path, np.random.default_rng(3))
    assert main([str(data), "--per-speaker"]) == 0

    global_stats = read_stats(data / "cmvn_global.ark")
    np.testing.assert_allclose(global_stats, accumulate_stats(feats.values()), rtol=1e-12)
    cmvn_scp = read_key_value(data / "cmvn.scp")
    assert list(cmvn_scp) == ["spkA", "spkB"]
    assert (data / "data" / "cmvn_train.ark").is_file()
    for spk, value in cmvn_scp.items():
        assert value.startswith(str((data / "data" / "cmvn_train.ark").absolute()) + ":")
        expected = accumulate_stats(f for u, f in feats.items() if utt2spk[u] == spk)
        np.testing.assert_allclose(read_stats(value), expected, rtol=1e-12)
    # kaldiio reads cmvn.scp as Kaldi tools would.
    assert set(kaldiio.load_scp(str(data / "cmvn.scp"))) == {"spkA", "spkB"}

    capsys.readouterr()
    assert not compute_cmvn_stats(data, per_speaker=True)
    assert "skipping" in capsys.readouterr().out
    assert compute_cmvn_stats(data, per_speaker=True, force=True)

    # New features (a newer feats.scp) make the stats stale.
    stamp = (data / "cmvn_global.ark").stat().st_mtime_ns
    os.utime(data / "feats.scp", ns=(stamp + 10**9, stamp + 10**9))
    assert compute_cmvn_stats(data)


def test_stage_global_only_writes_no_cmvn_scp(tmp_path):
    data, feats, _ = _make_data_dir(tmp_path, np.random.default_rng(4))
    assert compute_cmvn_stats(data)
    assert (data / "cmvn_global.ark").is_file() and not (data / "cmvn.scp").exists()
    # Asking for per-speaker stats afterwards is not "up to date".
    assert compute_cmvn_stats(data, per_speaker=True)
    assert (data / "cmvn.scp").is_file()


def test_stage_fails_clearly_without_features_or_with_missing_ones(tmp_path):
    data, _, _ = _make_data_dir(tmp_path, np.random.default_rng(5))
    lines = (data / "feats.scp").read_text().splitlines()
    (data / "feats.scp").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataDirError, match=r"feats.scp: 1 utterances of utt2spk have no features.*fix-data-dir"):
        compute_cmvn_stats(data)
    (data / "feats.scp").unlink()
    with pytest.raises(DataDirError, match=r"feats.scp: not found.*compute-fbank"):
        compute_cmvn_stats(data)
