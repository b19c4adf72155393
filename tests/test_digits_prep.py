"""recipes/digits/local/prepare_data.py on a tiny corpus: files, ids, sorting, held-out
identities, reproducibility, skipping a finished set and resuming a killed one."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from speech.data.synth_corpus import HELD_OUT_SPLIT, check_split
from speech.data.synth_speakers import SynthSpeaker, speaker_problem
from speech.errors import SpeechError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "digits" / "local" / "prepare_data.py"
VOICES = "flite-kal16,flite-awb,flite-slt,flite-rms,fest-ked,espeak-us-m5,piper-joe"
FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur")


def load_script():
    spec = importlib.util.spec_from_file_location("digits_prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(root: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(SCRIPT), "--out-dir", str(root / "data"), "--audio-dir", str(root / "corpus"),
            "--hours", "0.005", "--min-eval-utts", "6", "--nj", "2", "--voices", VOICES, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def table(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    for voice, _ in [vw for vws in HELD_OUT_SPLIT.values() for vw in vws]:
        if voice.id in VOICES.split(",") and speaker_problem(voice):
            pytest.skip(speaker_problem(voice))
    root = tmp_path_factory.mktemp("digits")
    proc = prepare(root)
    assert proc.returncode == 0, proc.stderr
    return root, proc


def test_files_ids_and_sorting(corpus):
    root, proc = corpus
    prep = load_script()
    for name in ("train", "dev", "test"):
        d = root / "data" / name
        for f in FILES:
            lines = (d / f).read_text().splitlines()
            assert lines, f"{d / f} is empty"
            keys = [line.split()[0].encode() for line in lines]
            assert keys == sorted(keys), f"{d / f} not in LC_ALL=C order"
            sort = subprocess.run(["sort", "-c", str(d / f)], env=dict(os.environ, LC_ALL="C"))
            assert sort.returncode == 0
        text, utt2spk, wav_scp = table(d / "text"), table(d / "utt2spk"), table(d / "wav.scp")
        assert text.keys() == utt2spk.keys() == wav_scp.keys() == table(d / "utt2dur").keys()
        spks = list(utt2spk.values())
        assert spks == sorted(spks, key=str.encode)  # sorted by utterance is sorted by speaker
        for utt, spk in utt2spk.items():
            assert utt.startswith(spk + "_")
            words = text[utt].split()
            assert 1 <= len(words) <= 7 and set(words) <= set(prep.DIGITS)
            assert text[utt] == " ".join(words)
            code = "".join(prep.CODE[w] for w in words)
            assert utt.endswith("_" + code)
        spk2utt = table(d / "spk2utt")
        assert sorted(u for us in spk2utt.values() for u in us.split()) == sorted(utt2spk)
        for utt, wav in list(wav_scp.items())[:5]:
            info = sf.info(wav)
            assert (info.samplerate, info.channels) == (16000, 1)
            assert float(table(d / "utt2dur")[utt]) == pytest.approx(info.duration, abs=1e-4)
    assert "train" in proc.stdout and " h " in proc.stdout and "speakers" in proc.stdout


def test_held_out_identities():
    check_split(HELD_OUT_SPLIT)
    ids = {name: {v.identity for v, _ in voices} for name, voices in HELD_OUT_SPLIT.items()}
    assert not ids["test"] & (ids["train"] | ids["dev"])
    assert not ids["dev"] & ids["train"]
    assert {"kal", "slt", "joe"} <= ids["train"] and "ked" in ids["test"]
    assert len(ids["train"]) >= 10
    bad = {k: list(v) for k, v in HELD_OUT_SPLIT.items()}
    bad["test"] = bad["test"] + [(SynthSpeaker("flite", "slt"), 1)]
    with pytest.raises(SpeechError, match="slt"):
        check_split(bad)


def test_tiny_corpus_speakers_are_disjoint(corpus):
    root, _ = corpus
    identity = {v.id: v.identity for vws in HELD_OUT_SPLIT.values() for v, _ in vws}
    seen = {n: {identity[s] for s in table(root / "data" / n / "utt2spk").values()} for n in ("train", "dev", "test")}
    assert seen["train"] == {"kal", "awb", "slt", "joe"} and seen["dev"] == {"rms"}
    assert seen["test"] == {"ked", "espeak-m5"}


def test_same_seed_same_corpus_other_seed_differs(corpus, tmp_path):
    root, _ = corpus
    assert prepare(tmp_path / "again").returncode == 0
    for name in ("train", "dev", "test"):
        for f in ("text", "utt2spk", "utt2dur"):
            assert (root / "data" / name / f).read_bytes() == (tmp_path / "again" / "data" / name / f).read_bytes()
    a = table(root / "data" / "train" / "wav.scp")
    b = table(tmp_path / "again" / "data" / "train" / "wav.scp")
    assert all(Path(a[u]).read_bytes() == Path(b[u]).read_bytes() for u in a)
    assert prepare(tmp_path / "other", "--seed", "7").returncode == 0
    assert table(tmp_path / "other" / "data" / "train" / "text") != table(root / "data" / "train" / "text")


def test_finished_sets_are_skipped_and_a_killed_run_resumes(corpus):
    root, _ = corpus
    test_dir = root / "data" / "test"
    wavs = table(test_dir / "wav.scp")
    kept = Path(next(iter(wavs.values())))
    mtime = kept.stat().st_mtime_ns
    lost = Path(list(wavs.values())[-1])
    lost.unlink()  # as if the run had been killed before this file and the tables
    (test_dir / "utt2dur").unlink()
    before = {f: (test_dir / f).read_bytes() for f in ("text", "utt2spk", "wav.scp")}
    proc = prepare(root)
    assert proc.returncode == 0, proc.stderr
    assert "data/train is complete; skipping" in proc.stderr
    assert lost.is_file() and kept.stat().st_mtime_ns == mtime
    assert {f: (test_dir / f).read_bytes() for f in before} == before
    assert (test_dir / "utt2dur").is_file()


def test_voices_filter_leaving_a_set_empty_is_an_error(tmp_path):
    proc = prepare(tmp_path, "--voices", "flite-awb")
    assert proc.returncode == 1
    assert "no voice left for dev" in proc.stderr and "Traceback" not in proc.stderr
