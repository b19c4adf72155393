"""speech.audio: reading any rate/channel count as mono float32, clear errors, atomic writes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from speech.audio import audio_duration, fill_digital_silence, is_pipe, load_audio, load_wav_scp_entry, save_audio
from speech.errors import AudioError

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440, 16000), 16000)
    return path


def test_reads_16k_mono_wav_unchanged(wav):
    x = load_audio(wav, 16000)
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_allclose(x, sine(440, 16000), atol=1 / 32768)


def test_stereo_is_mixed_to_mono_by_averaging(tmp_path):
    left, right = sine(440, 16000), sine(1000, 16000, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    x = load_audio(path, 16000)
    assert x.shape == (16000,)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_resamples_to_16k_with_right_length_and_frequency(tmp_path, rate):
    path = tmp_path / f"sine{rate}.wav"
    sf.write(path, sine(440, rate, seconds=2.0), rate)
    x = load_audio(path, 16000)
    assert x.dtype == np.float32
    assert len(x) == 32000
    assert abs(dominant_frequency(x, 16000) - 440) < 1.0
    # Level is kept (0.5 amplitude sine: RMS 0.354), away from the soxr filter's edges.
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_downsamples_from_16k_to_8k(wav):
    x = load_audio(wav, 8000)
    assert len(x) == 8000 and abs(dominant_frequency(x, 8000) - 440) < 1.5


def test_flac_reads_like_wav(tmp_path, wav):
    flac = tmp_path / "a.flac"
    sf.write(flac, sine(440, 16000), 16000)
    np.testing.assert_allclose(load_audio(flac, 16000), load_audio(wav, 16000), atol=2 / 32768)
    assert audio_duration(str(flac)) == 1.0


def test_missing_file_names_it(tmp_path):
    with pytest.raises(AudioError, match=r"nothere\.wav: no such audio file"):
        load_audio(tmp_path / "nothere.wav", 16000)


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path, 16000)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav: empty file \(0 bytes\)"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match="0 bytes"):
        audio_duration(str(path))


def test_wav_with_no_samples(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: contains no samples"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match="contains no samples"):
        audio_duration(str(path))


def test_truncated_wav_data(tmp_path, wav):
    path = tmp_path / "trunc.wav"
    data = wav.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"trunc\.wav: truncated WAV"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match="truncated WAV"):
        audio_duration(str(path))


def test_wav_cut_inside_its_header(tmp_path, wav):
    path = tmp_path / "header.wav"
    path.write_bytes(wav.read_bytes()[:30])
    with pytest.raises(AudioError, match=r"header\.wav: truncated or corrupt WAV header"):
        load_audio(path, 16000)


def test_truncated_flac(tmp_path):
    path = tmp_path / "trunc.flac"
    sf.write(tmp_path / "full.flac", np.random.default_rng(0).uniform(-0.5, 0.5, 48000).astype(np.float32), 16000)
    data = (tmp_path / "full.flac").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"trunc\.flac: truncated"):
        load_audio(path, 16000)


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("utt1 hello world\nutt2 more text\n")
    with pytest.raises(AudioError, match=r"notes\.wav: a text file, not audio \(it starts with 'utt1 hello world'\)"):
        load_audio(path, 16000)


def test_binary_garbage_is_not_audio(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"garbage\.bin: not a recognised audio format"):
        load_audio(path, 16000)


def test_wav_scp_path_entry(wav):
    np.testing.assert_array_equal(load_wav_scp_entry(str(wav), 16000), load_audio(wav, 16000))


def test_pipe_entry_is_run_and_decoded(wav):
    value = f"cat {wav} |"
    assert is_pipe(value) and not is_pipe(str(wav))
    np.testing.assert_array_equal(load_wav_scp_entry(value, 16000), load_audio(wav, 16000))
    assert audio_duration(value) == 1.0


@needs_sox
def test_sox_pipe_from_flac_resampled(tmp_path):
    flac = tmp_path / "a.flac"
    sf.write(flac, sine(440, 44100), 44100)
    x = load_wav_scp_entry(f"sox {flac} -t wav - |", 16000)
    assert len(x) == 16000 and abs(dominant_frequency(x, 16000) - 440) < 1.0


@needs_sox
def test_pipe_streaming_wav_without_length(tmp_path, wav):
    # sox writing to a pipe cannot seek back to fill in the length: a placeholder remains.
    x = load_wav_scp_entry(f"cat {wav} | sox -t wav - -t wav - |", 16000)
    np.testing.assert_allclose(x, load_audio(wav, 16000), atol=1 / 32768)


def test_failing_pipe_reports_exit_code_and_stderr_tail():
    with pytest.raises(AudioError, match=r"command 'echo cannot open x\.flac >&2; exit 3 \|' failed with exit code 3; "
                                         r"its stderr ends: cannot open x\.flac"):
        load_wav_scp_entry("echo cannot open x.flac >&2; exit 3 |", 16000)


def test_failure_inside_a_pipeline_is_not_hidden(wav):
    # Without pipefail the exit code of 'cat' (0) would hide the failing first command.
    with pytest.raises(AudioError, match="failed with exit code 1"):
        load_wav_scp_entry(f"(cat {wav}; false) | cat |", 16000)


def test_pipe_writing_nothing_or_text():
    with pytest.raises(AudioError, match="wrote nothing to standard output"):
        load_wav_scp_entry("true |", 16000)
    with pytest.raises(AudioError, match="command 'echo hello \\|': a text file, not audio"):
        load_wav_scp_entry("echo hello |", 16000)


def test_audio_duration_reads_header(tmp_path):
    path = tmp_path / "b.wav"
    sf.write(path, np.zeros(22050 * 3 // 2, np.float32), 22050)
    assert audio_duration(str(path)) == 1.5
    with pytest.raises(AudioError, match="no such audio file"):
        audio_duration(str(tmp_path / "missing.wav"))


def test_save_audio_round_trip_and_atomic(tmp_path):
    x = sine(440, 16000)
    save_audio(tmp_path / "out.wav", x, 16000)
    save_audio(tmp_path / "out.flac", x, 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.flac", "out.wav"]  # no temp files left
    info = sf.info(tmp_path / "out.wav")
    assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 16000)
    assert sf.info(tmp_path / "out.flac").format == "FLAC"
    np.testing.assert_allclose(load_audio(tmp_path / "out.flac", 16000), x, atol=1 / 32768)


def test_save_audio_clips_instead_of_wrapping(tmp_path):
    save_audio(tmp_path / "loud.wav", np.array([1.5, -2.0, 0.25], np.float32), 16000)
    y = load_audio(tmp_path / "loud.wav", 16000)
    np.testing.assert_allclose(y, [1.0, -1.0, 0.25], atol=1 / 16384)


def test_save_audio_rejects_bad_input(tmp_path):
    with pytest.raises(AudioError, match="unknown audio format '.xyz'"):
        save_audio(tmp_path / "a.xyz", np.zeros(10, np.float32), 16000)
    with pytest.raises(ValueError, match="mono samples"):
        save_audio(tmp_path / "a.wav", np.zeros((10, 2), np.float32), 16000)
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "a.wav", np.array([0.0, np.nan], np.float32), 16000)
    assert not (tmp_path / "a.wav").exists()


def test_fill_digital_silence_replaces_long_zero_runs_only():
    rng = np.random.default_rng(1)
    speech = (0.1 * rng.standard_normal(1600)).astype(np.float32)
    x = np.concatenate([np.zeros(800, np.float32), speech, np.zeros(100, np.float32), speech]).astype(np.float32)
    y = fill_digital_silence(x, 16000)  # 800 zeros = 50 ms: filled; 100 zeros = 6 ms: kept
    assert np.count_nonzero(y[:800]) == 800
    assert 20 * np.log10(np.sqrt(np.mean(y[:800] ** 2))) == pytest.approx(-75, abs=1)
    assert np.array_equal(y[800:], x[800:])
    assert np.array_equal(fill_digital_silence(x, 16000), y)  # deterministic
    quiet = np.concatenate([speech, np.zeros(100, np.float32), speech])
    assert fill_digital_silence(quiet, 16000) is quiet  # ordinary audio is returned as it is
