"""speech transcribe and speech align with hostile input: ids, options, output paths."""

import numpy as np
import pytest
import soundfile

from speech.cli import main
from support.cli import fails_in_one_line
from support.feature_dirs import make_asr_dirs, train_tiny_asr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcribe")
    dirs = make_asr_dirs(root / "data")
    assert train_tiny_asr(dirs, root / "exp") == 0
    return root / "exp", dirs


def wav(path, seconds=1.0, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.05, int(16000 * seconds)).astype(np.float32)
    soundfile.write(path, noise, 16000)
    return path


def test_two_files_with_one_stem_are_refused_before_anything_is_written(model, tmp_path, capsys):
    exp, _ = model
    a, b = wav(tmp_path / "a" / "x.wav"), wav(tmp_path / "b" / "x.wav", seed=1)
    out = tmp_path / "out"
    fails_in_one_line(capsys, ["transcribe", "--model", str(exp), "--output-dir", str(out), str(a), str(b)],
                      str(b), "'x'", str(a))
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["text", "ctm"])
def test_ids_with_spaces_keep_every_line_well_formed(model, tmp_path, capsys, fmt):
    exp, _ = model
    audio = wav(tmp_path / "dir with spaces" / "fïle 名前.wav", seconds=2.0)
    assert main(["transcribe", "--model", str(exp), "--format", fmt, "--output-dir", str(tmp_path / "out"),
                 str(audio)]) == 0
    written = (tmp_path / "out" / f"fïle_名前.{'txt' if fmt == 'text' else 'ctm'}").read_text().splitlines()
    assert written and all(line.split()[0] == "fïle_名前" for line in written)
    if fmt == "ctm":
        assert all(len(line.split()) == 6 for line in written)


@pytest.mark.parametrize("option, value, expected", [
    ("--batch-size", "0", "--batch-size 0"),
    ("--max-segment", "0", "--max-segment 0.0"),
    ("--beam-size", "0", "--beam-size 0"),
])
def test_bad_options_are_one_line(model, tmp_path, capsys, option, value, expected):
    exp, _ = model
    fails_in_one_line(capsys, ["transcribe", "--model", str(exp), option, value, str(wav(tmp_path / "a.wav"))],
                      expected)


def test_output_dir_that_is_a_file(model, tmp_path, capsys):
    exp, _ = model
    taken = tmp_path / "taken"
    taken.write_text("keep me\n")
    fails_in_one_line(capsys, ["transcribe", "--model", str(exp), "--output-dir", str(taken),
                               str(wav(tmp_path / "a.wav"))], "--output-dir", "not a directory")
    assert taken.read_text() == "keep me\n"


def test_align_warns_of_words_the_model_cannot_spell(model, tmp_path, capsys):
    exp, dirs = model
    data = tmp_path / "dev"
    import shutil

    shutil.copytree(dirs["dev"], data)
    lines = (data / "text").read_text().splitlines()
    utt = lines[0].split()[0]
    lines[0] = f"{utt} zebra"  # z, b and a are not among the digits' characters
    (data / "text").write_text("\n".join(lines) + "\n")
    assert main(["align", str(exp), str(data), str(tmp_path / "align")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "1 utterances have words spelled with symbols not in" in warnings[0]
    assert f"{utt}: zebra" in warnings[0]
