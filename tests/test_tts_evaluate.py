"""TTS evaluation: MCD, the intelligibility judges, speech evaluate-tts and plot-spectrograms."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import lfilter

from speech.audio import load_audio, resample
from speech.cli import main
from speech.data.datadir import DataDir
from speech.tts.evaluate import evaluate_tts
from speech.tts.judges import PocketSphinxJudge, corpus_words
from speech.tts.mcd import mel_cepstral_distortion
from support.cli import fails_in_one_line

SR = 16000
VOWELS = [(700, 1200), (300, 2300), (500, 900), (400, 2000), (650, 1700), (350, 800)]  # (F1, F2) Hz
OTHER_VOWELS = [(250, 2700), (850, 1500), (450, 1100), (300, 1700), (600, 2400), (750, 1000)]


def vowels(formants, seed=0, f0=120.0, seconds=0.15):
    """A voiced, speech-like signal: an impulse train at ``f0`` through two formant
    resonators per vowel, one vowel every ``seconds``; float32 [N], peak 0.3."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    parts = []
    for f1, f2 in formants:
        y = np.zeros(n)
        y[np.arange(0, n, SR / f0).astype(int)] = 1.0
        y += 0.01 * rng.standard_normal(n)
        for freq, bandwidth in ((f1, 80), (f2, 120)):
            r, theta = np.exp(-np.pi * bandwidth / SR), 2 * np.pi * freq / SR
            y = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], y)
        parts.append(y)
    x = np.concatenate(parts)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def speech_like():
    return vowels(VOWELS), vowels(OTHER_VOWELS, seed=1, f0=210.0)


def test_mcd_of_a_signal_against_itself_is_zero(speech_like):
    x, _ = speech_like
    assert mel_cepstral_distortion(x, x) < 1e-6


def test_mcd_aligns_a_delayed_and_stretched_copy(speech_like):
    x, other = speech_like
    rng = np.random.default_rng(5)
    delayed = np.concatenate([1e-3 * rng.standard_normal(1600).astype(np.float32), x[37:]])  # 0.1 s + 37 samples
    stretched = np.concatenate([x[:4800], x[2400:]])  # the second vowel said twice as long
    far = mel_cepstral_distortion(x, other)
    assert far > 5.0
    assert mel_cepstral_distortion(x, delayed) < min(2.5, far / 2)
    assert mel_cepstral_distortion(x, stretched) < 1.0
    assert mel_cepstral_distortion(x, 0.1 * x) < 0.2  # c0 (the gain) is left out
    noise = (0.1 * rng.standard_normal(len(x))).astype(np.float32)
    assert mel_cepstral_distortion(x, noise) > 2 * far


def test_mcd_of_silence_and_of_a_short_waveform_is_defined(speech_like):
    x, _ = speech_like
    assert mel_cepstral_distortion(x, np.zeros_like(x)) > 5.0
    assert np.isfinite(mel_cepstral_distortion(x, x[:100]))


def test_corpus_words_lower_cases_and_drops_fillers_and_punctuation():
    assert corpus_words("<s> Hello, [NOISE] AREN'T ++UM++ world. <sil> </s>") == "hello aren't world"


CLIPS = [("/usr/share/sounds/alsa/Front_Right.wav", "front right"),  # alsa-utils
         ("/usr/share/pocketsphinx/test/data/goforward.raw", "go forward ten meters")]  # pocketsphinx-testdata


@pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx is not installed")
@pytest.mark.parametrize("path, words", CLIPS)
def test_pocketsphinx_judge_transcribes_real_speech(path, words):
    if not Path(path).is_file():
        pytest.skip(f"{path} is not installed")
    if path.endswith(".raw"):  # headerless 16 kHz 16-bit
        samples = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768
    else:
        samples = load_audio(path, SR)
    assert PocketSphinxJudge().transcribe(samples) == words


class EchoJudge:
    """A judge that hears the same words in everything; counts what it was asked."""

    name, source, sample_rate, inputs = "echo", "echo test judge", SR, ()

    def __init__(self, words="hello world"):
        self.words, self.calls = words, 0

    def load(self):
        pass

    def transcribe(self, samples):
        self.calls += 1
        return self.words


def data_dir(path: Path, waves: dict, texts: dict, rate: int = SR) -> Path:
    wav_scp = {}
    for utt, samples in waves.items():
        wav = path / "wav" / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(wav, samples, rate)
        wav_scp[utt] = str(wav)
    DataDir(path, wav_scp=wav_scp, utt2spk={u: u.split("-")[0] for u in waves}, text=texts).write()
    return path


@pytest.fixture
def setup(tmp_path, speech_like):
    x, other = speech_like
    texts = {"spk-u1": "hello world", "spk-u2": "hello there"}
    ref = data_dir(tmp_path / "ref", {"spk-u1": x, "spk-u2": other}, texts)
    same = data_dir(tmp_path / "same", {"spk-u1": x, "spk-u2": other}, texts)
    noise = np.random.default_rng(0).normal(0, 0.05, len(x)).astype(np.float32)
    noisy = data_dir(tmp_path / "noisy", {"spk-u1": noise, "spk-u2": noise}, texts)
    return tmp_path, ref, same, noisy


def test_evaluate_tts_writes_rows_resumes_and_skips(setup, capsys):
    root, ref, same, noisy = setup
    out = root / "eval"
    judge = EchoJudge()
    assert evaluate_tts(ref, [("same", same), ("noisy", noisy)], out, [judge])
    assert judge.calls == 6  # 3 rows x 2 utterances
    rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| System", "| recordings", "| same", "| noisy"]
    assert rows[0] == "| System | MCD (dB) | WER echo (%) |"
    assert rows[1] == "| recordings | n/a | 25.00 |"  # "hello there" heard as "hello world"
    systems = {s["name"]: s for s in json.loads((out / "results.json").read_text())["systems"]}
    assert systems["recordings"]["mcd_db"] is None
    assert systems["same"]["mcd_db"] < 1e-6 < 5.0 < systems["noisy"]["mcd_db"]
    assert systems["noisy"]["wer"]["echo"] == {"wer": 25.0, "errors": 1, "words": 4, "ins": 0, "del": 0,
                                               "sub": 1, "ser": 50.0}
    assert (out / "noisy" / "echo" / "wer").read_text().startswith("%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]")
    assert (out / "spectrograms.png").read_bytes()[:4] == b"\x89PNG"

    # a run killed after one utterance of one system: only that system's missing rows are redone
    table = out / "noisy" / "echo" / "text"
    table.write_text(table.read_text().splitlines()[0] + "\n")
    (out / "noisy" / "mcd").write_text((out / "noisy" / "mcd").read_text().splitlines()[1] + "\n")
    (out / "results.json").unlink()
    judge = EchoJudge()
    assert evaluate_tts(ref, [("same", same), ("noisy", noisy)], out, [judge])
    assert judge.calls == 1
    resumed = {s["name"]: s for s in json.loads((out / "results.json").read_text())["systems"]}
    assert resumed == systems

    capsys.readouterr()
    assert not evaluate_tts(ref, [("same", same), ("noisy", noisy)], out, [judge])
    assert "skipping" in capsys.readouterr().out
    # another judge under the same name is not taken for the old one
    judge = EchoJudge("hello there")
    judge.source = "another echo"
    assert evaluate_tts(ref, [("same", same), ("noisy", noisy)], out, [judge])
    assert judge.calls == 6


def test_evaluate_tts_command_without_judges_and_recordings_at_another_rate(setup, speech_like, capsys):
    root, _, same, _ = setup
    x, other = speech_like
    # the recordings may be at any rate (resampled to 16 kHz); the systems must be at 16 kHz
    ref = data_dir(root / "ref22", {u: resample(w, SR, 22050) for u, w in (("spk-u1", x), ("spk-u2", other))},
                   {"spk-u1": "hello world", "spk-u2": "hello there"}, rate=22050)
    out = root / "eval"
    assert main(["evaluate-tts", "--ref", str(ref), "--no-pocketsphinx", "--out-dir", str(out), f"gru={same}"]) == 0
    (row,) = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| gru |")]
    assert float(row.split("|")[2]) < 0.5


def test_missing_utterance_is_one_line(setup, capsys):
    root, ref, same, _ = setup
    (same / "utt2spk").write_text("spk-u1 spk\n")
    fails_in_one_line(capsys, ["evaluate-tts", "--ref", str(ref), "--no-pocketsphinx", "--out-dir",
                               str(root / "eval"), f"gru={same}"], str(same / "utt2spk"), "'spk-u2'")


def test_wrong_sample_rate_and_unreadable_wav_are_one_line(setup, capsys):
    root, ref, _, _ = setup
    x = np.zeros(8000, dtype=np.float32)
    slow = data_dir(root / "slow", {"spk-u1": x, "spk-u2": x}, {}, rate=8000)
    argv = ["evaluate-tts", "--ref", str(ref), "--no-pocketsphinx", "--out-dir", str(root / "eval")]
    fails_in_one_line(capsys, argv + [f"slow={slow}"], str(slow / "wav" / "spk-u1.wav"), "8000 Hz", "16000 Hz")
    (slow / "wav" / "spk-u1.wav").write_text("not audio\n")
    fails_in_one_line(capsys, argv + [f"slow={slow}"], str(slow / "wav" / "spk-u1.wav"), "not audio")


def test_bad_arguments_are_one_line(setup, capsys):
    root, ref, same, _ = setup
    argv = ["evaluate-tts", "--ref", str(ref), "--no-pocketsphinx", "--out-dir", str(root / "eval")]
    fails_in_one_line(capsys, argv + [str(same)], "NAME=DATA_DIR")
    fails_in_one_line(capsys, argv + [f"a={same}", f"a={same}"], "'a' is taken")
    fails_in_one_line(capsys, argv + ["--judge-model", str(root)], str(root), "not a trained model directory")
    (same / "text").write_text("spk-u1 hello world\nspk-u2 good bye\n")
    fails_in_one_line(capsys, argv + [f"a={same}"], f"{same / 'text'}:2", "'hello there'")
    (ref / "text").write_text("spk-u1 hello world\n")
    fails_in_one_line(capsys, argv + [f"a={same}"], str(ref / "text"), "'spk-u2'")


def test_plot_spectrograms_writes_a_png(setup, capsys):
    root, ref, same, _ = setup
    out = root / "fig" / "spec.png"
    assert main(["plot-spectrograms", str(out), f"recording={ref / 'wav' / 'spk-u1.wav'}",
                 f"gru={same / 'wav' / 'spk-u2.wav'}"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out.parent.iterdir()] == ["spec.png"]  # no temporary left behind
