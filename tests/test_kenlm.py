"""train-lm with KenLM's lmplz: its ARPA loads and is normalised, keeps the n-grams the Python
estimator keeps (pruned or not), and predicts held-out text about as well; failures name
the text. The tests that run lmplz skip when it is absent (tools/install_kenlm.sh builds it)."""

from __future__ import annotations

import stat

import pytest

from speech.errors import SpeechError
from speech.lm.lmplz import find_lmplz
from speech.lm.ngram import BOS, EOS, ArpaModel
from speech.lm.train_lm import main
from support.lm_text import synthetic

LMPLZ, _ = find_lmplz()
needs_lmplz = pytest.mark.skipif(LMPLZ is None, reason="no lmplz (tools/install_kenlm.sh builds it)")

TOY = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat saw the dog",
       "on the mat sat a cat"]


def write_text(path, sentences, ids=True):
    path.write_text("".join((f"utt{i:05d} " if ids else "") + " ".join(s) + "\n" for i, s in enumerate(sentences)))
    return path


def train(tmp_path, text, name, *options):
    arpa = tmp_path / name
    assert main([str(text), str(arpa), *options]) == 0
    return ArpaModel.load(arpa)


@needs_lmplz
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_lmplz_arpa_loads_and_every_distribution_sums_to_one(tmp_path, order):
    text = write_text(tmp_path / "text", [s.split() for s in TOY])
    model = train(tmp_path, text, "lm.arpa", "--order", str(order), "--backend", "kenlm")
    assert model.order == order
    events = [w for w in model.vocab if w != BOS]
    assert set(events) == {w for s in TOY for w in s.split()} | {"</s>", "<unk>"}
    for h in [(), (BOS,), ("the",), (BOS, "the"), ("the", "cat"), ("sat", "on", "the"), ("zzz", "the"), ("mat",)]:
        assert sum(10 ** model.logprob(h, w) for w in events) == pytest.approx(1.0, abs=1e-4), h


@needs_lmplz
@pytest.mark.parametrize("prune", [[], ["0", "1"], ["1"]])
def test_lmplz_keeps_the_ngrams_python_keeps_and_predicts_as_well(tmp_path, prune):
    """Same counts, same pruning (raw counts <= threshold, thresholds from bigrams on): the same
    n-grams. Perplexities differ only by the discounts (lmplz: three per order, modified KN;
    Python: one per order): 16.2 vs 16.7 here, within 10 %."""
    sentences = synthetic(3000, seed=1)
    text = write_text(tmp_path / "train", sentences)
    dev = synthetic(300, seed=2)
    options = ["--order", "3", "--prune", *prune] if prune else ["--order", "3"]
    kenlm = train(tmp_path, text, "kenlm.arpa", *options, "--backend", "kenlm")
    python = train(tmp_path, text, "python.arpa", *options, "--backend", "python")
    for n in range(3):
        assert set(kenlm.probs[n]) == set(python.probs[n]), f"{n + 1}-grams"
    if prune:  # most trigrams are singletons
        trigrams = {tuple(p[i: i + 3]) for s in sentences for p in [(BOS, *s, EOS)] for i in range(len(p) - 2)}
        assert len(kenlm.probs[2]) < len(trigrams) / 2
    ratio = kenlm.perplexity(dev) / python.perplexity(dev)
    assert 1 / 1.1 < ratio < 1.1, ratio
    events = [w for w in kenlm.vocab if w != BOS]
    for h in [("w1",), ("w3", "w7"), (BOS, "w0")]:
        assert sum(10 ** kenlm.logprob(h, w) for w in events) == pytest.approx(1.0, abs=1e-4), h


@needs_lmplz
def test_lmplz_dev_perplexity_plain_text_and_its_errors(tmp_path, capsys):
    text = write_text(tmp_path / "text", [s.split() for s in TOY], ids=False)
    train(tmp_path, text, "lm.arpa", "--no-ids", "--order", "2", "--dev-text", str(text), "--backend", "kenlm")
    out = capsys.readouterr().out
    assert "5 sentences" in out and "13 1-grams" in out and "perplexity of" in out
    bad = write_text(tmp_path / "bad", [["a", "<unk>", "b"]])
    with pytest.raises(SpeechError, match=r"bad: lmplz failed .*Special word <unk>.*--backend python"):
        main([str(bad), str(tmp_path / "bad.arpa"), "--backend", "kenlm"])
    assert not list(tmp_path.glob("*bad.arpa*"))  # nothing half-written is left
    with pytest.raises(SpeechError, match="not decrease"):
        main([str(text), str(tmp_path / "x.arpa"), "--prune", "2", "1", "--backend", "kenlm"])


def test_kenlm_backend_without_lmplz_is_a_clear_error(tmp_path, monkeypatch, capsys):
    text = write_text(tmp_path / "text", [s.split() for s in TOY])
    monkeypatch.setenv("SPEECH_LMPLZ", str(tmp_path / "missing" / "lmplz"))
    with pytest.raises(SpeechError, match=r"--backend kenlm: no lmplz program at \$SPEECH_LMPLZ=.*missing.*install_kenlm"):
        main([str(text), str(tmp_path / "lm.arpa"), "--backend", "kenlm"])
    assert not (tmp_path / "lm.arpa").exists()
    # auto falls back to the Python estimator and says so
    assert main([str(text), str(tmp_path / "lm.arpa"), "--dev-text", str(text)]) == 0
    assert "backend python: no lmplz at $SPEECH_LMPLZ" in capsys.readouterr().err
    assert ArpaModel.load(tmp_path / "lm.arpa").order == 3


def test_a_failing_lmplz_is_reported_with_its_message(tmp_path, monkeypatch):
    """Any lmplz that fails: the error names the text and ends with lmplz's last words."""
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'some progress' >&2\necho 'out of disk space in /tmp' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SPEECH_LMPLZ", str(fake))
    text = write_text(tmp_path / "text", [s.split() for s in TOY])
    with pytest.raises(SpeechError, match=r"text: lmplz failed \(exit status 3\): some progress \| out of disk space"):
        main([str(text), str(tmp_path / "lm.arpa")])
    assert not list(tmp_path.glob("*lm.arpa*"))


@needs_lmplz
def test_lmplz_arpa_steers_the_lexicon_search(tmp_path):
    """flashlight's KenLM loads lmplz's ARPA: 'c a|o t' is cat or cot as the LM says."""
    import math

    import torch

    from speech.asr.lexicon_search import LexiconBeamSearch
    from speech.text.tokenizer import CharTokenizer
    from speech.text.tokens import build_char_table
    from support.posteriors import posteriors

    table = build_char_table(["the cat cot sat"])
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cat c a t\ncot c o t\nsat s a t\nthe t h e\n")
    frames = ["t", "h", "e", "<space>", "c", "a", "t", "<space>", "s", "a", "t", "<blank>"]
    lp = posteriors(table, frames)
    lp[0, 5] = torch.log(torch.full((len(table),), 0.02))
    lp[0, 5, table.symbols.index("a")] = lp[0, 5, table.symbols.index("o")] = math.log(0.4)
    for word, other in [("cat", "cot"), ("cot", "cat")]:
        text = write_text(tmp_path / f"{word}.txt", [["the", word, "sat"]] * 4 + [["a", other]])
        arpa = tmp_path / f"{word}.arpa"
        assert main([str(text), str(arpa), "--order", "2", "--backend", "kenlm"]) == 0
        search = LexiconBeamSearch(CharTokenizer(table), lexicon, lm=arpa, lm_weight=2.0)
        assert search(lp, torch.tensor([len(frames)])) == [f"the {word} sat"]
