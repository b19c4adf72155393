"""Word n-gram LMs: Kneser-Ney estimation that is normalised, ARPA that flashlight/KenLM
loads, pruning, and an LM that changes what the lexicon search picks."""

from __future__ import annotations

import math

import pytest
import torch

from speech.asr.lexicon_search import LexiconBeamSearch
from speech.asr.search import make_search
from speech.cli import main
from speech.errors import SpeechError
from speech.lm.ngram import BOS, EOS, UNK, ArpaModel, estimate, write_arpa
from speech.text.tokenizer import CharTokenizer
from speech.text.tokens import build_char_table
from support.lm_text import synthetic
from support.posteriors import posteriors

TOY = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat saw the dog",
       "on the mat sat a cat"]


def arpa_of(tmp_path, sentences, order=3, prune=(), name="lm.arpa"):
    path = tmp_path / name
    write_arpa(path, *estimate([s.split() for s in sentences], order, prune))
    return path


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_distribution_sums_to_one(tmp_path, order):
    model = ArpaModel.load(arpa_of(tmp_path, TOY, order))
    events = [w for w in model.vocab if w != BOS]
    assert UNK in events and EOS in events
    histories = [(), (BOS,), ("the",), (BOS, "the"), ("the", "cat"), ("sat", "on", "the"), ("zzz", "the"),
                 ("dog", "dog"), ("mat",)]
    for h in histories:
        assert sum(10 ** model.logprob(h, w) for w in events) == pytest.approx(1.0, abs=1e-5), h


def test_arpa_layout_and_kneser_ney_preferences(tmp_path):
    path = arpa_of(tmp_path, TOY, 3)
    text = path.read_text()
    assert text.startswith("\\data\\\nngram 1=13\n") and text.rstrip().endswith("\\end\\")
    model = ArpaModel.load(path)
    assert model.probs[0][(BOS,)] == -99.0
    # seen continuations beat unseen ones; an unknown word gets the <unk> probability
    assert model.logprob(("the",), "cat") > model.logprob(("the",), "and")
    assert model.logprob(("sat",), "on") > model.logprob(("sat",), "the")
    assert model.logprob(("the",), "zebra") == model.logprob(("the",), UNK)
    # perplexity of the training text is low, of shuffled words high
    assert model.perplexity([s.split() for s in TOY]) < 4 < model.perplexity([["mat", "and", "on", "saw"]])


def test_pruning_drops_rare_ngrams_and_stays_normalised(tmp_path):
    full = ArpaModel.load(arpa_of(tmp_path, TOY, 3, name="full.arpa"))
    pruned = ArpaModel.load(arpa_of(tmp_path, TOY, 3, prune=(0, 1), name="pruned.arpa"))
    assert len(pruned.probs[2]) < len(full.probs[2]) and len(pruned.probs[1]) == len(full.probs[1])
    assert all(c > 1 for g, c in [(g, sum(" ".join(g) in f"<s> {s} </s>" for s in TOY)) for g in pruned.probs[2]])
    events = [w for w in pruned.vocab if w != BOS]
    for h in [("the", "cat"), ("sat", "on")]:
        assert sum(10 ** pruned.logprob(h, w) for w in events) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(SpeechError, match="not decrease"):
        estimate([s.split() for s in TOY], 3, (2, 1))


def test_pruned_mass_goes_to_the_back_off(tmp_path):
    """Pruning keeps the discounts of the full counts and gives the pruned n-grams' mass to
    the back-off (as lmplz): on held-out text a pruned model is about as good as the full
    one (it was 30-45 % worse when pruned n-grams left their histories' totals)."""
    train, dev = synthetic(3000, seed=1), synthetic(300, seed=2)
    full = ArpaModel.load(arpa_of(tmp_path, [" ".join(s) for s in train], 3, name="full.arpa"))
    for prune in [(0, 1), (1,)]:
        pruned = ArpaModel.load(arpa_of(tmp_path, [" ".join(s) for s in train], 3, prune, name="pruned.arpa"))
        assert len(pruned.probs[2]) < len(full.probs[2]) / 2
        assert pruned.perplexity(dev) < 1.05 * full.perplexity(dev), prune


def test_train_lm_stage_and_bad_arpa(tmp_path, capsys):
    text = tmp_path / "text"
    text.write_text("".join(f"u{i} {s}\n" for i, s in enumerate(TOY)))
    assert main(["train-lm", str(text), str(tmp_path / "lm.arpa"), "--order", "2", "--dev-text", str(text)]) == 0
    out = capsys.readouterr().out
    assert "13 1-grams" in out and "perplexity" in out
    assert ArpaModel.load(tmp_path / "lm.arpa").order == 2
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\nnot-a-number b\n\\end\\\n")
    with pytest.raises(SpeechError, match="bad.arpa:6"):
        ArpaModel.load(bad)


def test_lm_decides_between_words_the_acoustics_cannot(tmp_path):
    """'c a|o t': the posteriors cannot tell cat from cot; the LM's history can."""
    table = build_char_table(["the cat cot sat"])
    tok = CharTokenizer(table)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cat c a t\ncot c o t\nsat s a t\nthe t h e\n")
    frames = ["t", "h", "e", "<space>", "c", "a", "t", "<space>", "s", "a", "t", "<blank>"]
    lp = posteriors(table, frames)
    lp[0, 5] = torch.log(torch.full((len(table),), 0.02))  # frame 5: "a" and "o" alike
    lp[0, 5, table.symbols.index("a")] = lp[0, 5, table.symbols.index("o")] = math.log(0.4)
    lengths = torch.tensor([len(frames)])
    cat_lm = arpa_of(tmp_path, ["the cat sat"] * 4 + ["a cot"], 2, name="cat.arpa")
    cot_lm = arpa_of(tmp_path, ["the cot sat"] * 4 + ["a cat"], 2, name="cot.arpa")
    assert LexiconBeamSearch(tok, lexicon, lm=cat_lm, lm_weight=2.0)(lp, lengths) == ["the cat sat"]
    assert LexiconBeamSearch(tok, lexicon, lm=cot_lm, lm_weight=2.0)(lp, lengths) == ["the cot sat"]
    with pytest.raises(SpeechError, match="needs a lexicon"):
        make_search(tok, tmp_path, lm=cat_lm)
    with pytest.raises(SpeechError, match="no such language model"):
        LexiconBeamSearch(tok, lexicon, lm=tmp_path / "missing.arpa")
