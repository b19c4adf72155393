"""LM weight and word score tuning (speech tune-lm) and n-best output of the lexicon search:
the grid holds every pair with the WER a search of those weights really gets, the choice
is the grid's minimum, decode-asr applies it, and n-best lists are ranked and led by the
1-best."""

from __future__ import annotations

import random
from itertools import product
from types import SimpleNamespace

import pytest
import torch

from speech.asr.lexicon_search import LexiconBeamSearch
from speech.asr.search import load_lm_params
from speech.asr.score import ErrorStats, compute_error_stats, score_dir
from speech.asr.tune_lm import GridPoint, tune
from speech.cli import main
from speech.fileio import read_key_value
from speech.lm.ngram import estimate, write_arpa
from speech.text.tokenizer import CharTokenizer
from speech.text.tokens import build_char_table
from support.cli import fails_in_one_line
from support.feature_dirs import make_asr_dirs
from support.posteriors import ctc_frames, posteriors

WORD_LIST = ["one", "on", "two", "to", "too", "ten", "net", "tone"]
# the LM's text and the dev transcripts: a few phrases, so the LM can repair noisy acoustics
PHRASES = [["one", "two", "ten"], ["on", "to", "net"], ["two", "tone"], ["ten", "too", "one"]]
LM_WEIGHTS, WORD_SCORES = [0.0, 0.5, 1.0, 2.0, 4.0], [-3.0, 0.0, 3.0]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A lexicon search with a bigram LM (and what it was built from), and 12 utterances of
    noisy made-up CTC outputs with their transcripts, as tune() takes them."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("toy")
    table = build_char_table(WORD_LIST)
    lexicon = tmp / "lexicon.txt"
    lexicon.write_text("".join(f"{w} {' '.join(w)}\n" for w in WORD_LIST))
    rng = random.Random(0)
    arpa = tmp / "lm.arpa"
    write_arpa(arpa, *estimate([rng.choice(PHRASES) for _ in range(40)], 2))
    gen = torch.Generator().manual_seed(0)
    outputs, refs = [], {}
    for i in range(12):
        words = rng.choice(PHRASES)
        frames = ctc_frames(words, rng)
        noise = torch.randn(1, len(frames), len(table), generator=gen)
        outputs.append(([f"u{i:02d}"], torch.log_softmax(posteriors(table, frames) + noise, dim=-1),
                        torch.tensor([len(frames)])))
        refs[f"u{i:02d}"] = " ".join(words)
    tok = CharTokenizer(table)
    search = LexiconBeamSearch(tok, lexicon, beam_size=20, lm=arpa)
    return SimpleNamespace(search=search, outputs=outputs, refs=refs, tok=tok, lexicon=lexicon, arpa=arpa)


def test_grid_has_every_pair_with_its_real_wer_and_the_best_first(toy):
    search, outputs, refs = toy.search, toy.outputs, toy.refs
    grid = tune(search, outputs, refs, LM_WEIGHTS, WORD_SCORES)
    assert sorted((p.lm_weight, p.word_score) for p in grid) == sorted(product(LM_WEIGHTS, WORD_SCORES))
    for p in grid:
        # a search built afresh with these weights (LM loaded again) scores the same: the
        # grid's decoders, which reuse the loaded LM, are what decode-asr would run
        fresh = LexiconBeamSearch(toy.tok, toy.lexicon, beam_size=20, lm=toy.arpa, lm_weight=p.lm_weight,
                                  word_score=p.word_score)
        hyps = {utt: hyp for ids, lp, n in outputs for utt, hyp in zip(ids, fresh(lp, n))}
        assert compute_error_stats(refs, hyps) == p.stats, (p.lm_weight, p.word_score)
    errors = [p.stats.errors for p in grid]
    # measured: 0 to 21 errors over the grid, so a choice ignoring the WERs would show
    assert len(set(errors)) > 3 and errors == sorted(errors)
    best = grid[0]
    tied = [p for p in grid if p.stats.errors == min(errors)]
    assert min((abs(p.word_score), abs(p.lm_weight - 1)) for p in tied) == (abs(best.word_score),
                                                                           abs(best.lm_weight - 1))


def test_ties_prefer_the_smaller_word_score_then_lm_weight_near_one():
    two, one = ErrorStats(ref_words=10, subs=2), ErrorStats(ref_words=10, subs=1)
    points = [GridPoint(lw, ws, two) for lw, ws in [(2, 0), (1.5, 0), (0.5, 0), (1, 1), (1, -1)]]
    points.append(GridPoint(3, 3, one))
    ranked = sorted(points, key=GridPoint.rank_key)
    assert [(p.lm_weight, p.word_score) for p in ranked] == [(3, 3), (0.5, 0), (1.5, 0), (2, 0), (1, -1), (1, 1)]


def test_nbest_is_ranked_bounded_and_led_by_the_one_best(toy):
    outputs = toy.outputs
    lm_weight, word_score = 1.0, 0.5
    search = toy.search.with_weights(lm_weight, word_score)
    lengths_seen = set()
    for _, lp, lengths in outputs:
        for n in (1, 3):
            (hyps,) = search.nbest(lp, lengths, n)
            lengths_seen.add((n, len(hyps)))
            assert 1 <= len(hyps) <= n
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            assert len({h.words for h in hyps}) == len(hyps)  # no word sequence twice
            assert hyps[0].words == search(lp, lengths)[0]
            for h in hyps:
                assert h.score == pytest.approx(h.am_score + lm_weight * h.lm_score
                                                + word_score * len(h.words.split()), abs=1e-3)
    assert (3, 3) in lengths_seen  # the bound is reached, not only respected
    # a padded batch gives every utterance the lists it gets alone
    t = max(lp.shape[1] for _, lp, _ in outputs)
    batch = torch.cat([torch.nn.functional.pad(lp, (0, 0, 0, t - lp.shape[1]), value=-1e4) for _, lp, _ in outputs])
    lengths = torch.cat([n for _, _, n in outputs])
    assert search.nbest(batch, lengths, 3) == [search.nbest(lp, n, 3)[0] for _, lp, n in outputs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(dirs, exp, lm, lexicon): a one-epoch model on random features and a bigram LM."""
    root = tmp_path_factory.mktemp("stage")
    dirs = make_asr_dirs(root / "data")
    exp = root / "exp"
    assert main(["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]), "--lang-dir",
                 str(dirs["lang"]), "--exp-dir", str(exp), "--device", "cpu", "model.hidden_size=16",
                 "model.num_layers=1", "trainer.epochs=1", "trainer.tensorboard=false", "cmvn=utterance"]) == 0
    lm = root / "lm.arpa"
    assert main(["train-lm", str(dirs["train"] / "text"), str(lm), "--order", "2"]) == 0
    return dirs, exp, lm, dirs["lang"] / "lexicon.txt"


def test_tune_lm_stage_and_decode_with_its_choice(trained, tmp_path):
    dirs, exp, lm, lexicon = trained
    dev, out = dirs["dev"], tmp_path / "tune"
    lm_args = ["--lexicon", str(lexicon), "--lm", str(lm)]
    # no value is both an LM weight and a word score, so a swapped pair shows
    assert main(["tune-lm", str(exp), str(dev), str(out), *lm_args, "--lm-weights", "0.5,1.5,3",
                 "--word-scores", "-1,0,1,2"]) == 0
    rows = [line.split() for line in (out / "grid").read_text().splitlines() if not line.startswith("#")]
    assert sorted((float(r[0]), float(r[1])) for r in rows) == sorted(product([0.5, 1.5, 3], [-1, 0, 1, 2]))
    errors = [int(r[3]) for r in rows]
    assert errors == sorted(errors)
    lm_weight, word_score = load_lm_params(out / "best.yaml")
    assert (lm_weight, word_score) == (float(rows[0][0]), float(rows[0][1]))

    # decode-asr with the file: the weights' dev WER, the text of the explicit options
    dec = tmp_path / "decode"
    assert main(["decode-asr", str(exp), str(dev), str(dec), *lm_args, "--lm-params", str(out / "best.yaml"),
                 "--nbest", "3"]) == 0
    assert score_dir(dev, dec).errors == errors[0]
    assert main(["decode-asr", str(exp), str(dev), str(tmp_path / "explicit"), *lm_args, "--lm-weight",
                 str(lm_weight), "--word-score", str(word_score)]) == 0
    text = read_key_value(dec / "text", allow_empty_value=True)
    assert read_key_value(tmp_path / "explicit" / "text", allow_empty_value=True) == text

    nbest = read_key_value(dec / "nbest", allow_empty_value=True)
    scores = read_key_value(dec / "nbest_scores")
    assert list(nbest) == list(scores)
    for utt, hyp in text.items():
        keys = [k for k in nbest if k.rsplit("-", 1)[0] == utt]
        assert 1 <= len(keys) <= 3 and keys == [f"{utt}-{rank}" for rank in range(1, len(keys) + 1)]
        assert nbest[f"{utt}-1"] == hyp
        totals = []
        for k in keys:
            total, am, lm_score = map(float, scores[k].split())
            assert total == pytest.approx(am + lm_weight * lm_score + word_score * len(nbest[k].split()), abs=1e-3)
            totals.append(total)
        assert totals == sorted(totals, reverse=True)


@pytest.mark.parametrize("option, value, message", [
    ("--lm-weights", "", "--lm-weights is empty"),
    ("--lm-weights", " , ", "--lm-weights is empty"),
    ("--word-scores", "0,x", "--word-scores: 'x' is not a number"),
    ("--lm-weights", "1,nan", "--lm-weights: 'nan' is not a number"),
    ("--lm-weights", "-1", "--lm-weights: -1 is below 0"),
])
def test_bad_grids_are_named(tmp_path, capsys, option, value, message):
    assert main(["tune-lm", str(tmp_path), str(tmp_path), str(tmp_path / "out"), "--lm", "lm.arpa", option,
                 value]) == 1
    assert message in capsys.readouterr().err


def test_missing_inputs_and_conflicting_options_are_named(trained, tmp_path, capsys):
    dirs, exp, lm, lexicon = trained
    dev = dirs["dev"]

    def fails(stage, *args):
        assert main([stage, str(exp), *map(str, args)]) == 1
        return capsys.readouterr().err

    out = tmp_path / "out"
    assert "missing.arpa: no such language model" in fails("tune-lm", dev, out, "--lexicon", lexicon, "--lm",
                                                          tmp_path / "missing.arpa")
    assert "cannot read the lexicon" in fails("tune-lm", dev, out, "--lexicon", tmp_path / "nolex", "--lm", lm)
    assert "text: missing" in fails("tune-lm", tmp_path, out, "--lexicon", lexicon, "--lm", lm)

    params = tmp_path / "best.yaml"
    params.write_text("lm_weight: 1.5\nword_score: abc\n")
    lm_args = ["--lexicon", lexicon, "--lm", lm]
    assert "word_score is 'abc', not a number" in fails("decode-asr", dev, out, *lm_args, "--lm-params", params)
    assert "no such LM parameter file" in fails("decode-asr", dev, out, *lm_args, "--lm-params", tmp_path / "none")
    assert "leave out --lm-weight" in fails("decode-asr", dev, out, *lm_args, "--lm-params", params,
                                            "--lm-weight", "1")
    assert "give it with --lm" in fails("decode-asr", dev, out, "--lexicon", lexicon, "--lm-params", params)
    assert "--nbest needs the lexicon beam search" in fails("decode-asr", dev, out, "--nbest", "2")
    assert "give 1 to 20" in fails("decode-asr", dev, out, *lm_args, "--nbest", "21")


def _outputs(out):
    """Every file under ``out`` except logs: relative path -> text."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
            if p.is_file() and "log" not in p.relative_to(out).parts}


def test_decoding_tuning_and_alignment_in_3_jobs_equal_one_job(trained, tmp_path, capsys):
    """decode-asr (greedy; lexicon + LM with n-best), tune-lm and align with --nj 3 over
    dev's split (12 utterances by utterance): every output file as one job writes it."""
    dirs, exp, lm, lexicon = trained
    dev = str(dirs["dev"])
    lm_args = ["--lexicon", str(lexicon), "--lm", str(lm)]
    runs = {"greedy": ["decode-asr"], "lm": ["decode-asr", *lm_args, "--nbest", "3", "--lm-weight", "1.5"],
            "tune": ["tune-lm", *lm_args, "--lm-weights", "0.5,1.5", "--word-scores", "-1,0,2"],
            "align": ["align"]}
    expected = {"greedy": {"text", "decoding.yaml"}, "lm": {"text", "nbest", "nbest_scores", "decoding.yaml"},
                "tune": {"grid", "best.yaml"}, "align": {"ctm", "textgrid/spk0-u000.TextGrid"}}
    for name, (stage, *options) in runs.items():
        one, three = tmp_path / name / "nj1", tmp_path / name / "nj3"
        assert main([stage, str(exp), dev, str(one), *options]) == 0
        assert main([stage, str(exp), dev, str(three), *options, "--nj", "3"]) == 0
        assert _outputs(three) == _outputs(one), name
        assert expected[name] <= _outputs(one).keys(), _outputs(one).keys()
        assert not (three / "split3").exists()  # the jobs' dirs are merged and gone
        logs = sorted((three / "log").glob("*.[123].log"))
        assert len(logs) == 3 and all("# Ended (code 0)" in p.read_text() for p in logs), logs
    capsys.readouterr()
    # a job that fails fails its stage, naming its log and exit code
    err = fails_in_one_line(capsys, ["decode-asr", str(exp), dev, str(tmp_path / "bad"), "--nj", "2", "--graph",
                                     str(tmp_path / "no_graph")], "2 of 2 'decode' jobs failed",
                            str(tmp_path / "bad" / "log" / "decode.1.log"), "(code 1)")
    assert "no_graph" in (tmp_path / "bad" / "log" / "decode.2.log").read_text(), err
