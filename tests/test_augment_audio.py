"""Waveform augmentation (speech/augment/) and the augment-data-dir stage: each transform
keeps length and rate, is reproducible from its seed, and does what it says when measured
on known signals (SNR, decay time, F0, band, codec delay)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech.augment import channel, level, noise, room, voice
from speech.cli import main
from speech.fileio import read_key_value, write_key_value
from support.cli import fails_in_one_line

RATE = 16000


def harmonic_voice(f0: float = 120.0, seconds: float = 1.0, formant: float = 700.0) -> np.ndarray:
    """A vowel-like test signal: harmonics of ``f0`` under one formant peak, with a little
    vibrato so that WORLD's F0 tracker sees a voice."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / RATE
    y = sum(np.exp(-((k * f0 - formant) / 400) ** 2) * np.sin(k * phase) for k in range(1, int(7000 / f0)))
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def median_f0(x: np.ndarray) -> float:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pyworld
    f0, _ = pyworld.dio(x.astype(np.float64), RATE)
    return float(np.median(f0[f0 > 0]))


def test_noise_at_a_given_snr_is_that_snr_and_every_noise_is_seeded():
    rng = np.random.default_rng(0)
    x = harmonic_voice()
    for n in (noise.coloured_noise(rng, len(x), 1.0), noise.hum(rng, len(x), RATE),
              noise.babble(rng, len(x), [harmonic_voice(150), harmonic_voice(210, 0.4)])):
        assert n.dtype == np.float32 and len(n) == len(x) and level.rms(n) == pytest.approx(1.0, rel=1e-3)
        for snr in (0.0, 12.5):
            y = level.add_at_snr(x, n, snr)
            assert 10 * np.log10(level.rms(x) ** 2 / level.rms(y - x) ** 2) == pytest.approx(snr, abs=1e-3)
    a, b = (noise.coloured_noise(np.random.default_rng(7), 4000, 2.0) for _ in range(2))
    assert np.array_equal(a, b) and not np.array_equal(a, noise.coloured_noise(np.random.default_rng(8), 4000, 2.0))


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_spectral_slope_it_is_drawn_with(exponent):
    n = noise.coloured_noise(np.random.default_rng(1), 2 ** 16, exponent)
    power = np.abs(np.fft.rfft(n)) ** 2
    f = np.arange(len(power))
    band = (f > 100) & (f < 20000)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.1)


def test_a_simulated_room_decays_at_its_rt60_and_keeps_the_direct_sound_in_place():
    rng = np.random.default_rng(3)
    for _ in range(3):
        r = room.draw_room(rng, room.RoomConfig())
        assert all(room.WALL_MARGIN_M <= p <= s - room.WALL_MARGIN_M for p, s in zip(r.source[:2], r.size[:2]))
        assert np.linalg.norm(np.subtract(r.source, r.mic)) >= 0.5
        h = room.impulse_response(r, RATE)
        # Schroeder's backward integral; T20 (-5 to -25 dB) times 3
        edc = 10 * np.log10(np.cumsum(h[::-1] ** 2)[::-1] / np.sum(h ** 2))
        t20 = 3 * (np.argmax(edc < -25) - np.argmax(edc < -5)) / RATE
        assert 0.8 < t20 / r.rt60 < 1.5, (r, t20)  # Sabine's RT60 against the image method's decay
        click = np.zeros(RATE, dtype=np.float32)
        click[4000] = 1.0
        wet = room.reverberate(click, h)
        assert len(wet) == RATE and int(np.argmax(np.abs(wet))) == 4000
        assert level.rms(wet) == pytest.approx(level.rms(click), rel=1e-4)
    assert room.draw_room(np.random.default_rng(5), room.RoomConfig()) == room.draw_room(
        np.random.default_rng(5), room.RoomConfig())


def test_a_pseudo_speaker_has_the_scaled_f0_and_the_warped_envelope():
    x = harmonic_voice(120.0)
    y = voice.resynthesize(x, RATE, voice.PseudoSpeaker(f0_scale=1.5, warp=1.0))
    assert y.dtype == np.float32 and len(y) == len(x)
    assert median_f0(y) / median_f0(x) == pytest.approx(1.5, rel=0.03)
    assert level.rms(y) == pytest.approx(level.rms(x), rel=1e-4)
    envelope = np.exp(-((np.arange(513) - 100.0) / 10) ** 2)[None, :].repeat(3, axis=0)
    assert int(np.argmax(voice.warp_envelope(envelope, 1.2)[0])) == 120
    assert int(np.argmax(voice.warp_envelope(envelope, 0.8)[0])) == 80
    # the formant moves: the spectral centroid rises with the warp
    centroid = [float(np.sum(np.abs(np.fft.rfft(s)) * np.arange(len(s) // 2 + 1)) / np.sum(np.abs(np.fft.rfft(s))))
                for s in (x, voice.resynthesize(x, RATE, voice.PseudoSpeaker(1.0, 1.15)))]
    assert centroid[1] > centroid[0] * 1.05


def test_telephone_band_and_codecs_keep_length_and_timing():
    x = harmonic_voice(110.0, 1.5, formant=1500.0) + 0.05 * noise.coloured_noise(np.random.default_rng(0), 24000, 0.0)
    phone = channel.telephone(x, RATE)
    assert len(phone) == len(x) and phone.dtype == np.float32
    power = np.abs(np.fft.rfft(phone)) ** 2
    freqs = np.fft.rfftfreq(len(phone), 1 / RATE)
    assert power[freqs > 4000].sum() < 1e-3 * power.sum()  # nothing above the 8 kHz rate's Nyquist
    for name in channel.CODECS:
        for compression in (0.0, 1.0):
            y = channel.codec(x, RATE, name, compression)
            assert len(y) == len(x) and y.dtype == np.float32
            # realigned: the decoded audio matches the input best where it is, not shifted
            corr = {lag: np.corrcoef(x[10:-10], y[10 + lag: len(y) - 10 + lag])[0, 1] for lag in (-3, 0, 3)}
            assert corr[0] > max(corr[-3], corr[3]), (name, compression, corr)
            # at the highest bit rate close to a copy; at 12 kbit/s Opus keeps the spectrum, not the waveform
            assert corr[0] > (0.9 if compression == 0 else 0.3), (name, compression, corr)
    shifted = np.concatenate([np.zeros(300, dtype=np.float32), x])[: len(x)]
    assert np.array_equal(channel.realign(shifted, x)[: len(x) - 300], x[: len(x) - 300])


def _source_dir(path, utts=6):
    """A data dir of vowel-like 'utterances' by 2 speakers, as wav files."""
    (path / "wav").mkdir(parents=True)
    wav_scp, utt2spk, text = {}, {}, {}
    for i in range(utts):
        spk = f"spk{i % 2}"
        utt = f"{spk}-u{i}"
        sf.write(path / "wav" / f"{utt}.wav", harmonic_voice(100 + 40 * (i % 2) + 5 * i, 0.5 + 0.1 * i), RATE)
        wav_scp[utt], utt2spk[utt], text[utt] = str(path / "wav" / f"{utt}.wav"), spk, f"word{i}"
    for name, table in (("wav.scp", wav_scp), ("utt2spk", utt2spk), ("text", text)):
        write_key_value(path / name, table)
    return path


def test_augment_data_dir_is_reproducible_in_any_number_of_jobs_and_resumes(tmp_path, capsys):
    src = _source_dir(tmp_path / "src")
    everything = ["room.prob=0.5", "noise.prob=0.8", "channel.prob=0.6"]
    assert main(["augment-data-dir", str(src), str(tmp_path / "a"), "--copies", "2", *everything]) == 0
    assert main(["augment-data-dir", str(src), str(tmp_path / "b"), "--copies", "2", "--nj", "3", *everything]) == 0
    assert main(["validate-data-dir", str(tmp_path / "a")]) == 0
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("utt2spk", "spk2utt", "text", "utt2dur", "augment_params"):
        assert (a / name).read_text() == (b / name).read_text(), name
    utt2spk = read_key_value(a / "utt2spk")
    assert sorted(utt2spk) == sorted(f"aug{k}-spk{i % 2}-u{i}" for k in (1, 2) for i in range(6))
    assert all(spk == utt.rsplit("-", 1)[0] for utt, spk in utt2spk.items())
    params = read_key_value(a / "augment_params")
    kinds = " ".join(params.values())
    assert all(word in kinds for word in ("f0=", "rt60=", "noise=", "channel="))
    # one pseudo-speaker a speaker within a copy, another in the other copy
    voices = {(utt.split("-")[0], utt2spk[utt]): params[utt].split()[:2] for utt in utt2spk}
    assert all(voices[(c, s)] == params[u].split()[:2] for u, s in utt2spk.items() for c in [u.split("-")[0]])
    assert voices[("aug1", "aug1-spk0")] != voices[("aug2", "aug2-spk0")]
    for utt in utt2spk:
        x, rate = sf.read(a / "wav" / f"{utt}.flac", dtype="float32")
        y, _ = sf.read(b / "wav" / f"{utt}.flac", dtype="float32")
        source, _ = sf.read(src / "wav" / f"{utt.split('-', 1)[1]}.wav", dtype="float32")
        assert rate == RATE and len(x) == len(source) and np.array_equal(x, y), utt
    capsys.readouterr()

    # a re-run skips; a killed run (a flac and spk2utt gone) makes the same file again
    assert main(["augment-data-dir", str(src), str(a), "--copies", "2", *everything]) == 0
    assert "skipping" in capsys.readouterr().out
    gone = a / "wav" / "aug2-spk1-u3.flac"
    kept = (a / "wav" / "aug1-spk0-u0.flac").stat().st_mtime_ns
    before = gone.read_bytes()
    gone.unlink()
    (a / "spk2utt").unlink()
    assert main(["augment-data-dir", str(src), str(a), "--copies", "2", *everything]) == 0
    assert gone.read_bytes() == before and (a / "wav" / "aug1-spk0-u0.flac").stat().st_mtime_ns == kept
    # another seed draws other speakers and rooms
    assert main(["augment-data-dir", str(src), str(tmp_path / "c"), "--seed", "1", *everything]) == 0
    assert (tmp_path / "c" / "augment_params").read_text() != (a / "augment_params").read_text()


def test_bad_augment_options_are_one_line(tmp_path, capsys):
    src = _source_dir(tmp_path / "src", utts=2)
    fails_in_one_line(capsys, ["augment-data-dir", str(src), str(tmp_path / "x"), "noise.kinds=[rain]"],
                      "noise.kinds", "coloured, babble, hum")
    fails_in_one_line(capsys, ["augment-data-dir", str(src), str(src)], "the destination is the source")
    fails_in_one_line(capsys, ["augment-data-dir", str(src), str(tmp_path / "x"), "room.prob=2"], "room.prob")
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("wav.scp", "utt2spk"):
        (empty / name).write_text("")
    fails_in_one_line(capsys, ["augment-data-dir", str(empty), str(tmp_path / "y")], "no utterances to augment")
    assert not (tmp_path / "y").exists()


def test_the_shipped_config_is_the_defaults():
    import dataclasses

    from speech.config import load_config
    from speech.data.augment_data_dir import AugmentConfig

    shipped = load_config(AugmentConfig, "conf/augment/default.yaml")
    assert dataclasses.asdict(shipped) == dataclasses.asdict(AugmentConfig())
