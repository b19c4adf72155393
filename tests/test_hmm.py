"""The GMM-HMM baseline end to end on the toy task of tests/support/hmm_toy.py: flat-start
monophones, triphones on their alignments, HCLG decoding, forced alignment, and the
one-line errors of bad input."""

from __future__ import annotations

import json

import kaldifst
import numpy as np
import pytest
import torch

from speech.cli import main
from speech.errors import SpeechError
from speech.hmm.align import PhoneSpan, equal_alignment, phone_spans
from speech.hmm.align_hmm import word_spans
from speech.hmm.graph import hmm_graph
from speech.hmm.model import load_system
from speech.hmm.topology import ENTER
from tests.support.cli import fails_in_one_line
from tests.support.hmm_toy import LEXICON, TINY_MONO, TINY_TRI, make_data, make_lang

CONF = "conf/hmm/mono.yaml"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Data, lang and trained mono and tri systems, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("hmm")
    truth = {"train": make_data(root / "train", 80, 1), "test": make_data(root / "test", 16, 2)}
    make_lang(root / "lang")
    assert main(["train-mono", str(root / "train"), str(root / "lang"), str(root / "mono"), "--nj", "2",
                 "--config", CONF, *TINY_MONO]) == 0
    assert main(["train-tri", str(root / "train"), str(root / "lang"), str(root / "mono"), str(root / "tri"),
                 "--nj", "2", "--config", "conf/hmm/tri.yaml", *TINY_TRI]) == 0
    return root, truth


def _text(path):
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_em_raises_the_likelihood_every_pass(toy):
    root, _ = toy
    history = json.loads((root / "mono" / "progress.json").read_text())["history"]
    assert len(history) == 8
    # Viterbi EM cannot lower the likelihood; mixing up may cost a hair (a split's perturbation)
    assert all(b >= a - 1e-3 for a, b in zip(history, history[1:])), history
    assert history[-1] > history[0] + 1.0


def test_a_two_word_grammar_decodes_perfectly(toy, tmp_path):
    root, _ = toy
    for system in ("mono", "tri"):
        out = tmp_path / system
        assert main(["decode-hmm", str(root / system), str(root / "test"), str(out)]) == 0
        assert _text(out / "text") == _text(root / "test" / "text")
    # a word penalty is a cost per word: a large one makes the search drop words
    assert main(["decode-hmm", str(root / "mono"), str(root / "test"), str(tmp_path / "p"),
                 "--word-penalty", "500"]) == 0
    decoded = sum(len(t.split()) for t in (tmp_path / "p" / "text").read_text().splitlines())
    assert decoded < sum(len(t.split()) - 1 for t in (root / "test" / "text").read_text().splitlines())


def test_a_graph_made_once_decodes_as_one_built_per_run_and_belongs_to_its_model(toy, tmp_path, capsys):
    root, _ = toy
    graph = tmp_path / "graph"
    assert main(["make-graph-hmm", str(root / "tri"), str(graph)]) == 0
    assert sorted(p.name for p in graph.iterdir()) == ["HCLG.fst", "model_id", "words.txt"]
    assert main(["make-graph-hmm", str(root / "tri"), str(graph)]) == 0
    assert "skipping" in capsys.readouterr().out
    assert main(["decode-hmm", str(root / "tri"), str(root / "test"), str(tmp_path / "g"), "--graph", str(graph)]) == 0
    assert main(["decode-hmm", str(root / "tri"), str(root / "test"), str(tmp_path / "b")]) == 0
    assert _text(tmp_path / "g" / "text") == _text(tmp_path / "b" / "text") == _text(root / "test" / "text")
    capsys.readouterr()
    # the tri graph holds the tri tree and transition probabilities: not the mono system's
    fails_in_one_line(capsys, ["decode-hmm", str(root / "mono"), str(root / "test"), str(tmp_path / "m"),
                               "--graph", str(graph)], "was made from another model")
    # ... and a graph dir given to make-graph-hmm of another model is rebuilt, not skipped
    assert main(["make-graph-hmm", str(root / "mono"), str(graph)]) == 0
    assert "skipping" not in capsys.readouterr().out
    (graph / "model_id").unlink()
    fails_in_one_line(capsys, ["decode-hmm", str(root / "mono"), str(root / "test"), str(tmp_path / "m"),
                               "--graph", str(graph)], "not a whole GMM-HMM graph")


def test_triphones_model_the_data_better_than_monophones(toy):
    root, _ = toy
    mono = json.loads((root / "mono" / "progress.json").read_text())["history"][-1]
    tri = json.loads((root / "tri" / "progress.json").read_text())["history"][-1]
    system = load_system(root / "tri")
    assert system.cfg.context_width == 3
    assert system.tree.num_pdfs > len(load_system(root / "mono").tree.owner())  # the tree split some roots
    assert tri > mono


def test_alignments_respect_the_transcript_and_find_the_boundaries(toy, tmp_path):
    root, truth = toy
    out = tmp_path / "ali"
    assert main(["align-hmm", str(root / "tri"), str(root / "test"), str(out)]) == 0
    phones = _text(out / "phones")
    texts = _text(root / "test" / "text")
    errors = []
    for utt, spans in truth["test"].items():
        spoken = [p for p in phones[utt].split() if p != "SIL"]
        assert spoken == [p for w in texts[utt].split() for p in LEXICON[w]]
        want = [(p, a, b) for p, a, b in spans if p != "SIL"]
        ctm = [line.split() for line in (out / "phones.ctm").read_text().splitlines()]
        got = [(f[4], round(float(f[2]) * 100)) for f in ctm if f[0] == utt and f[4] != "SIL"]
        errors += [abs(start - a) for (_, start), (_, a, _) in zip(got, want)]
    # every phone start within a few frames, most within one (OW's first state, which
    # follows N or G and sounds different after G, is where the boundary is least clear)
    errors = np.asarray(errors)
    assert np.mean(errors <= 1) > 0.6 and errors.mean() < 1.5 and errors.max() <= 8, errors
    words = (out / "words.ctm").read_text().splitlines()
    assert len(words) == sum(len(t.split()) for t in texts.values())
    durations = _text(out / "durations")
    utt = next(iter(truth["test"]))
    assert sum(map(int, durations[utt].split())) == truth["test"][utt][-1][2]
    assert (out / "textgrid" / f"{utt}.TextGrid").is_file()
    frames = _text(root / "test" / "utt2num_frames")
    assert {u: v.split()[1] for u, v in _text(out / "loglik").items()} == frames
    # the second pass, with the means adapted to each speaker, fits the speaker better
    assert main(["align-hmm", str(root / "tri"), str(root / "test"), str(tmp_path / "map"), "--adapt-tau", "20"]) == 0
    assert _text(tmp_path / "map" / "phones").keys() == phones.keys()
    adapted, first = (np.mean([float(v.split()[0]) for v in _text(d / "loglik").values()]) for d in (tmp_path / "map", out))
    assert adapted > first + 0.1, (adapted, first)


def test_batched_scores_are_each_utterances_own(toy):
    root, _ = toy
    system = load_system(root / "tri")
    feats = [torch.randn(n, system.gmms.dim) for n in (7, 30, 12, 5, 40)]
    # batches of at most 45 frames: [7, 30], [12, 5], [40]; one utterance longer than a batch
    # still comes out whole
    batched = list(system.iter_tid_scores(feats, max_frames=45))
    assert [len(m) for m in batched] == [7, 30, 12, 5, 40]
    for x, m in zip(feats, batched):
        np.testing.assert_allclose(m, system.tid_scores(x), rtol=1e-5, atol=1e-4)
    assert list(system.iter_tid_scores(feats[-1:], max_frames=10))[0].shape == (40, 2 * system.gmms.num_pdfs)


def test_word_spans_search_the_pronunciations_not_the_first_that_fits():
    names = ("SIL", "T", "UW", "Z")
    lexicon = {"to": [["T", "UW"], ["T"]], "ooze": [["UW", "Z"]]}
    # SIL T UW Z SIL: 'to' is T here; the longer T UW also fits where 'to' starts
    phones = [PhoneSpan(p, 2 * k, 2 * k + 2) for k, p in enumerate((1, 2, 3, 4, 1))]
    assert word_spans(phones, names, ["to", "ooze"], lexicon) == [("to", 2, 4), ("ooze", 4, 8)]
    with pytest.raises(SpeechError, match="do not spell 'ooze to'"):
        word_spans(phones, names, ["ooze", "to"], lexicon)


def test_the_toy_hclg_spells_each_word_through_its_states(toy):
    root, _ = toy
    system = load_system(root / "mono")
    graph, words = hmm_graph(system)
    owner = system.tree.owner()
    for word, pron in LEXICON.items():
        # one frame entering each state of each phone: the shortest path that says the word
        tids = []
        for phone in pron:
            pid = system.topology.phone_id(phone)
            tids += [2 * pdf + ENTER for pdf, (p, _) in enumerate(owner) if p == pid]
        path = kaldifst.compose(kaldifst.make_linear_acceptor([t + 1 for t in tids]), graph)
        ok, _, out, _ = kaldifst.get_linear_symbol_sequence(kaldifst.shortest_path(path))
        assert ok and [words[w] for w in out] == [word]
        backwards = kaldifst.compose(kaldifst.make_linear_acceptor([t + 1 for t in reversed(tids)]), graph)
        kaldifst.connect(backwards)
        assert backwards.num_states == 0


@pytest.mark.parametrize("system", ["mono", "tri"])
def test_the_hclg_is_deterministic_and_reads_only_tids(toy, system):
    root, _ = toy
    model = load_system(root / system)
    graph, _ = hmm_graph(model)
    for state in range(graph.num_states):
        labels = [arc.ilabel for arc in kaldifst.ArcIterator(graph, state)]
        # determinized, and C's disambiguation symbols removed: one arc per frame label, and
        # every input label is a tid + 1 (or epsilon, where a disambiguation symbol was)
        frames = [label for label in labels if label]
        assert len(frames) == len(set(frames))
        assert all(0 <= label <= 2 * model.gmms.num_pdfs for label in labels)


def test_equal_alignment_is_a_path_of_the_transcript(toy):
    root, _ = toy
    system = load_system(root / "mono")
    graph, _ = hmm_graph(system, transcript=["yes", "go"])
    tids = equal_alignment(graph, 60, seed=3)
    names = [system.topology.phones[s.phone - 1] for s in phone_spans(tids, system.tree.owner())]
    assert [p for p in names if p != "SIL"] == ["Y", "EH", "S", "G", "OW"]
    assert equal_alignment(graph, 5, seed=3) is None  # fewer frames than states


def test_a_killed_run_resumes_at_its_next_iteration(toy, tmp_path):
    root, _ = toy
    exp = tmp_path / "mono"
    args = ["train-mono", str(root / "train"), str(root / "lang"), str(exp), "--nj", "2", "--config", CONF,
            *TINY_MONO]
    assert main([*args, "train.num_iters=3"]) == 0
    (exp / "train.done").unlink()  # as if killed after iteration 2
    first_part = json.loads((exp / "progress.json").read_text())["seconds"]
    assert main(args) == 0
    # the training time is both runs' (the CTC trainer's rule), not only the resumed one's
    assert json.loads((exp / "train.done").read_text())["seconds"] > first_part > 0
    history = json.loads((exp / "progress.json").read_text())["history"]
    assert history == pytest.approx(json.loads((root / "mono" / "progress.json").read_text())["history"], abs=1e-4)


@pytest.mark.timeout(300)
def test_training_jobs_through_slurm_give_the_local_models(toy, slurm_cluster, tmp_path):
    # Two EM passes of each system, local and through sbatch arrays (alignment, statistics,
    # the tree's statistics and the conversion of alignments): the same models, tensor for tensor.
    from safetensors.torch import load_file

    root, _ = toy
    train, lang = str(root / "train"), str(root / "lang")
    for cmd in ("local", "slurm --mem 1G"):
        exp = tmp_path / cmd.split()[0]
        jobs = ["--nj", "2", "--cmd", cmd]
        assert main(["train-mono", train, lang, str(exp / "mono"), "--config", CONF, *jobs, *TINY_MONO,
                     "train.num_iters=2"]) == 0
        assert main(["train-tri", train, lang, str(root / "mono"), str(exp / "tri"), "--config", "conf/hmm/tri.yaml",
                     *jobs, *TINY_TRI, "train.num_iters=2"]) == 0
    assert "Slurm job" in (tmp_path / "slurm" / "mono" / "log" / "acc.1.1.log").read_text().splitlines()[1]
    for name in ("mono", "tri"):
        local, remote = (load_file(str(tmp_path / cmd / name / "model.safetensors")) for cmd in ("local", "slurm"))
        assert local.keys() == remote.keys()
        for key in local:
            assert torch.equal(local[key], remote[key]), f"{name} {key} differs"


def test_new_words_are_pronounced_and_boundary_offsets_move_the_boundaries(toy, tmp_path, capsys):
    root, _ = toy
    data = tmp_path / "test"
    make_data(data, 4, 3, words=["no", "go"])
    # 'know' is not in the lexicon; CMUdict says N OW, as the audio is
    (data / "text").write_text((data / "text").read_text().replace(" no ", " know "))
    raw = tmp_path / "raw"
    assert main(["align-hmm", str(root / "tri"), str(data), str(raw)]) == 0
    assert (raw / "lexicon_added.txt").read_text() == "know N OW\n"
    assert set(_text(raw / "phones").values()) <= {"SIL N OW G OW SIL", "SIL N OW SIL G OW SIL"}
    (tmp_path / "offsets.yaml").write_text("default: 0.0\nmin_count: 1\npairs:\n"
                                           "  nasal-vowel: {offset: 0.02, count: 1}\n  silence-stop: {offset: -0.01, count: 1}\n")
    moved = tmp_path / "moved"
    assert main(["align-hmm", str(root / "tri"), str(data), str(moved), "--boundary-offsets",
                 str(tmp_path / "offsets.yaml")]) == 0
    before, after = (_ctm_phones(d / "phones.ctm") for d in (raw, moved))
    for utt, phones in before.items():
        for (label, start), (label2, start2), previous in zip(phones[1:], after[utt][1:], phones):
            expected = {("N", "OW"): -0.02, ("SIL", "G"): 0.01}.get((previous[0], label), 0.0)
            assert label == label2 and start2 == pytest.approx(start + expected, abs=1e-6), (utt, label)
        # the word 'go' starts where its G does, and durations follow the moved times
        go = [f for f in (line.split() for line in (moved / "words.ctm").read_text().splitlines()) if f[0] == utt][1]
        assert float(go[2]) == pytest.approx(next(t for p, t in after[utt] if p == "G"))
        frames = list(map(int, _text(moved / "durations")[utt].split()))
        assert min(frames) >= 1 and sum(frames) == int(_text(data / "utt2num_frames")[utt])
    (data / "text").write_text((data / "text").read_text().replace(" know ", " maybe "))
    capsys.readouterr()
    fails_in_one_line(capsys, ["align-hmm", str(root / "tri"), str(data), str(tmp_path / "bad")],
                      "'maybe' is not in", "phones the model lacks")


def _ctm_phones(path):
    out: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        f = line.split()
        out.setdefault(f[0], []).append((f[4], float(f[2])))
    return out


@pytest.mark.parametrize("words, expected", [(" yes maybe", "'maybe' has no pronunciation"),
                                              ("", "empty transcript")])
def test_bad_transcripts_are_one_line(toy, tmp_path, capsys, words, expected):
    root, _ = toy
    data = tmp_path / "train"
    make_data(data, 8, 5)
    text = (data / "text").read_text().splitlines()
    text[0] = text[0].split()[0] + words
    (data / "text").write_text("\n".join(text) + "\n")
    fails_in_one_line(capsys, ["train-mono", str(data), str(root / "lang"), str(tmp_path / "exp"), "--nj", "1",
                               *TINY_MONO], expected)


def test_features_of_another_dimension_are_one_line(toy, tmp_path, capsys):
    root, _ = toy
    from speech.config import save_config
    from speech.data.datadir import FEATURE_CONFIG
    from speech.features import FeatureConfig

    data = tmp_path / "test"
    make_data(data, 4, 6)
    save_config(FeatureConfig(type="mfcc", num_ceps=20), data / FEATURE_CONFIG)
    fails_in_one_line(capsys, ["decode-hmm", str(root / "mono"), str(data), str(tmp_path / "dec")],
                      "another config", "num_ceps")


def test_a_model_dir_of_another_kind_is_one_line(toy, tmp_path, capsys):
    root, _ = toy
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.yaml").write_text("kind: vocoder\n")
    fails_in_one_line(capsys, ["decode-hmm", str(tmp_path / "m"), str(root / "test"), str(tmp_path / "dec")],
                      "kind 'vocoder'")



@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: --device cuda is valid here")
@pytest.mark.parametrize("stage", ["train-mono", "decode-hmm", "align-hmm"])
def test_device_cuda_without_a_gpu_is_one_line(toy, tmp_path, capsys, stage):
    root, _ = toy
    argv = {"train-mono": ["train-mono", str(root / "train"), str(root / "lang"), str(tmp_path / "exp"), *TINY_MONO],
            "decode-hmm": ["decode-hmm", str(root / "mono"), str(root / "test"), str(tmp_path / "dec")],
            "align-hmm": ["align-hmm", str(root / "mono"), str(root / "test"), str(tmp_path / "ali")]}[stage]
    fails_in_one_line(capsys, [*argv, "--device", "cuda"], "no CUDA GPU is visible here")
    assert not (tmp_path / "exp" / "model.safetensors").exists()


def test_decoding_and_alignment_in_jobs_equal_one_job(toy, tmp_path, capsys):
    """decode-hmm in 3 jobs and align-hmm (with the per-speaker second pass) asked for 6 on
    the test set's 4 speakers (so 4 jobs, split by speaker): every output file is one job's."""
    root, _ = toy
    test = str(root / "test")
    for stage, nj, options in (("decode-hmm", 3, []), ("align-hmm", 6, ["--adapt-tau", "20"])):
        one, split = tmp_path / stage / "nj1", tmp_path / stage / "split"
        assert main([stage, str(root / "tri"), test, str(one), *options]) == 0
        assert main([stage, str(root / "tri"), test, str(split), *options, "--nj", str(nj)]) == 0
        jobs = min(nj, 4)
        assert ("has 4 speakers; using --nj 4" in capsys.readouterr().err) == (nj > 4)
        files = {str(p.relative_to(one)) for p in one.rglob("*") if p.is_file() and "log" not in p.parts}
        assert {str(p.relative_to(split)) for p in split.rglob("*") if p.is_file() and "log" not in p.parts} == files
        assert all((one / f).read_bytes() == (split / f).read_bytes() for f in files), stage
        assert len(list((split / "log").glob("*.*.log"))) == jobs
    assert len(list((tmp_path / "align-hmm" / "nj1" / "textgrid").glob("*.TextGrid"))) == 16
