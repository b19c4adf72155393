"""The model-dir contract (speech/model_dir.py): kind, weights and tokens errors as one
line; train-asr's config checks before --force; input size from the features; the decoding
setup that pick-decoding records and transcribe uses."""

import shutil

import pytest
import yaml

from speech.asr.search import DECODING, DecodingSetup
from speech.asr.transcribe import Transcriber
from speech.cli import main
from speech.model_dir import CONFIG, KINDS, WEIGHTS, ModelKind
from support.cli import fails_in_one_line
from support.feature_dirs import make_asr_dirs, train_tiny_asr as train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_dir")
    dirs = make_asr_dirs(root / "data")
    assert train(dirs, root / "exp") == 0
    return dirs, root / "exp"


def copy_of(exp, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(exp, out)
    return out


def test_config_names_its_kind(trained):
    _, exp = trained
    assert yaml.safe_load((exp / CONFIG).read_text())["kind"] == "asr"


def test_a_model_dir_of_another_kind_is_refused(trained, tmp_path, capsys, monkeypatch):
    dirs, exp = trained
    model = copy_of(exp, tmp_path)
    monkeypatch.setitem(KINDS, "vocoder", ModelKind("x:Y", "x:z", "speech train-vocoder"))
    text = (model / CONFIG).read_text().replace("kind: asr", "kind: vocoder")
    (model / CONFIG).write_text(text)
    fails_in_one_line(capsys, ["decode-asr", str(model), str(dirs["dev"]), str(tmp_path / "dec")],
                   "kind 'vocoder'", "speech train-vocoder", "needs kind 'asr'")


def test_config_without_kind_says_how_to_fix(trained, tmp_path, capsys):
    dirs, exp = trained
    model = copy_of(exp, tmp_path)
    (model / CONFIG).write_text((model / CONFIG).read_text().replace("kind: asr\n", ""))
    fails_in_one_line(capsys, ["decode-asr", str(model), str(dirs["dev"]), str(tmp_path / "dec")],
                   f"{model / CONFIG}", "add the line 'kind: asr'")


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_unreadable_weights_are_one_line(trained, tmp_path, capsys, damage):
    dirs, exp = trained
    model = copy_of(exp, tmp_path)
    weights = model / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 40)
    fails_in_one_line(capsys, ["decode-asr", str(model), str(dirs["dev"]), str(tmp_path / "dec")],
                   f"{weights}: cannot read the weights")
    wav = tmp_path / "a.wav"
    import numpy as np
    import soundfile

    soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    fails_in_one_line(capsys, ["transcribe", "--model", str(model), str(wav)], f"{weights}: cannot read the weights")


def test_tokens_cut_short_are_one_line(trained, tmp_path, capsys):
    dirs, exp = trained
    model = copy_of(exp, tmp_path)
    lines = (model / "tokens.txt").read_text().splitlines()
    (model / "tokens.txt").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    fails_in_one_line(capsys, ["decode-asr", str(model), str(dirs["dev"]), str(tmp_path / "dec")],
                   "tokens.txt", "tokens")


def test_force_with_a_bad_key_keeps_the_trained_model(trained, tmp_path, capsys):
    dirs, exp = trained
    model = copy_of(exp, tmp_path)
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    fails_in_one_line(capsys, ["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]),
                            "--lang-dir", str(dirs["lang"]), "--exp-dir", str(model), "--force",
                            "trainer.epoch=3"], "epoch")
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("epochs", [0, -1])
def test_no_epochs_is_refused_before_anything_is_written(trained, tmp_path, capsys, epochs):
    dirs, _ = trained
    exp = tmp_path / "exp"
    fails_in_one_line(capsys, ["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]),
                            "--lang-dir", str(dirs["lang"]), "--exp-dir", str(exp), f"trainer.epochs={epochs}"],
                   "trainer.epochs must be >= 1")
    assert not exp.exists()


def test_use_energy_features_train_with_their_width(tmp_path):
    dirs = make_asr_dirs(tmp_path / "data", use_energy=True)
    exp = tmp_path / "exp"
    assert train(dirs, exp) == 0
    cfg = yaml.safe_load((exp / CONFIG).read_text())
    assert cfg["model"]["input_dim"] == 21 and cfg["features"]["use_energy"] is True
    assert main(["decode-asr", str(exp), str(dirs["dev"]), str(tmp_path / "dec")]) == 0


@pytest.fixture(scope="module")
def picked(trained, tmp_path_factory):
    """The model with a decoding.yaml picked by pick-decoding from three scored dev decodings
    (greedy, lexicon + LM with weights 0.5/2, WFST); only the WFST one is given for the pick."""
    dirs, exp = trained
    root = tmp_path_factory.mktemp("picked")
    model = root / "exp" / "model"
    shutil.copytree(exp, model)
    lm = root / "lm.arpa"
    assert main(["train-lm", str(dirs["train"] / "text"), str(lm), "--order", "2"]) == 0
    graph = root / "graph"
    assert main(["make-graph", str(dirs["lang"]), str(graph), "--lm", str(lm)]) == 0
    decodes = {"greedy": [], "lm": ["--lexicon", str(dirs["lang"] / "lexicon.txt"), "--lm", str(lm)],
               "wfst": ["--graph", str(graph)]}
    for name, args in decodes.items():
        out = root / "exp" / f"decode_dev_{name}"
        assert main(["decode-asr", str(model), str(dirs["dev"]), str(out), *args, "--lm-weight", "0.5",
                     "--word-score", "2"] if args else ["decode-asr", str(model), str(dirs["dev"]), str(out)]) == 0
        assert main(["score", str(dirs["dev"]), str(out)]) == 0
    return dirs, model, lm, graph, root


def test_decode_dirs_record_their_search(picked):
    _, _, lm, graph, root = picked
    lm_setup = DecodingSetup.load(root / "exp" / "decode_dev_lm" / DECODING)
    assert (lm_setup.search, lm_setup.lm.resolve(), lm_setup.lm_weight, lm_setup.word_score) == ("lexicon", lm, 0.5, 2)
    assert DecodingSetup.load(root / "exp" / "decode_dev_wfst" / DECODING).graph.resolve() == graph
    assert DecodingSetup.load(root / "exp" / "decode_dev_greedy" / DECODING).search == "greedy"


def test_pick_decoding_takes_the_lowest_dev_wer(picked, tmp_path):
    from speech.asr.pick_decoding import pick_decoding
    from support.recipes import wer_of

    _, model, _, _, root = picked
    dirs = [root / "exp" / f"decode_dev_{name}" for name in ("greedy", "lm", "wfst")]
    best, wer = pick_decoding(model, dirs)
    assert wer == min(wer_of(d) for d in dirs) and wer_of(best) == wer
    assert dirs.index(best) == min(i for i, d in enumerate(dirs) if wer_of(d) == wer)  # ties: the first


def test_transcribe_decodes_with_the_picked_setup(picked, tmp_path, capsys):
    from speech.asr.wfst_search import WfstSearch

    _, model, _, graph, root = picked
    assert main(["pick-decoding", str(model), str(root / "exp" / "decode_dev_wfst")]) == 0
    saved = yaml.safe_load((model / DECODING).read_text())
    assert saved["search"] == "wfst" and saved["graph"] == "../../graph"  # relative: the recipe can move
    search = Transcriber.from_dir(model).search
    assert isinstance(search, WfstSearch) and search.scale == 2.0  # 1 / lm_weight 0.5
    assert not isinstance(Transcriber.from_dir(model, greedy=True).search, WfstSearch)
    assert Transcriber.from_dir(model, lm_weight=0.25).search.scale == 4.0  # an option replaces its value
    # a graph that moved is named, in one line, with what to do
    graph.rename(graph.with_name("moved"))
    try:
        wav = tmp_path / "a.wav"
        import numpy as np
        import soundfile

        soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000)
        fails_in_one_line(capsys, ["transcribe", "--model", str(model), str(wav)], f"{model / DECODING}",
                       "graph ../../graph", "--greedy")
        assert main(["transcribe", "--model", str(model), "--greedy", str(wav)]) == 0
    finally:
        graph.with_name("moved").rename(graph)
