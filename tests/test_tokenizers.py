"""Output units: BPE pieces (sentencepiece) and phones (CMUdict + festival letter-to-sound),
through prepare-lang, training, greedy and lexicon decoding."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from speech.asr.lexicon_search import LexiconBeamSearch
from speech.asr.search import make_search
from speech.cli import main
from speech.text.g2p import cmu_phones, festival_g2p
from speech.text.prepare_lang import prepare_lang
from speech.text.tokenizer import BpeTokenizer, CharTokenizer, PhoneTokenizer, load_tokenizer, read_lexicon
from support.posteriors import posteriors

TEXT = "".join(f"u{i:02d} {t}\n" for i, t in enumerate([
    "zero one two three", "four five six seven", "eight nine oh zero", "one one two two",
    "the quick brown fox", "jumps over the lazy dog", "seven eight nine", "the zorblatt sings",
]))

needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="festival not installed")


def lang(tmp_path, unit, **kw):
    text = tmp_path / "text"
    text.write_text(TEXT)
    out = tmp_path / f"lang_{unit}"
    assert main(["prepare-lang", str(text), str(out), "--unit", unit, *kw.get("args", [])]) == 0
    return out


def test_bpe_lang_dir_round_trips_and_spells_words_in_pieces(tmp_path):
    out = lang(tmp_path, "bpe", args=["--bpe-size", "40"])
    tok = load_tokenizer(out)
    assert isinstance(tok, BpeTokenizer) and tok.table.symbols[:2] == ["<blank>", "<unk>"]
    assert len(tok.table) <= 41
    for sentence in ("zero one two three", "the lazy fox sings"):
        ids = tok.encode(sentence)
        assert 0 not in ids and tok.decode(ids) == sentence
    lexicon = read_lexicon(out / "lexicon.txt")
    assert set(lexicon) == set(TEXT.split()) - {f"u{i:02d}" for i in range(8)}
    for word, (spelling,) in lexicon.items():
        assert spelling[0].startswith("\u2581") and "".join(spelling).lstrip("\u2581") == word
        assert all(p in tok.table.symbols for p in spelling)
    # the same text and size give the same model (a re-run recipe must not change ids)
    (tmp_path / "again").mkdir()
    again = lang(tmp_path / "again", "bpe", args=["--bpe-size", "40"])
    assert (again / "tokens.txt").read_text() == (out / "tokens.txt").read_text()


def test_changing_the_unit_redoes_the_lang_dir(tmp_path):
    text = tmp_path / "text"
    text.write_text(TEXT)
    os.utime(text, (1_000_000_000, 1_000_000_000))
    out = tmp_path / "lang"
    assert prepare_lang(text, out, unit="char") is True
    assert prepare_lang(text, out, unit="char") is False
    assert prepare_lang(text, out, unit="bpe", bpe_size=40) is True
    assert isinstance(load_tokenizer(out), BpeTokenizer)
    assert prepare_lang(text, out, unit="bpe", bpe_size=40) is False
    assert prepare_lang(text, out, unit="bpe", bpe_size=35) is True


def test_too_few_bpe_pieces_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "text"
    text.write_text(TEXT)
    assert main(["prepare-lang", str(text), str(tmp_path / "lang"), "--unit", "bpe", "--bpe-size", "10"]) == 1
    assert "cannot train 10 BPE pieces" in capsys.readouterr().err


@needs_festival
def test_phone_lexicon_from_cmudict_with_festival_for_oov(tmp_path):
    out = lang(tmp_path, "phone")
    tok = load_tokenizer(out)
    assert isinstance(tok, PhoneTokenizer) and not tok.greedy_gives_words
    assert tok.table.symbols[2:] == list(cmu_phones()) and len(cmu_phones()) == 39
    lexicon = read_lexicon(out / "lexicon.txt")
    assert lexicon["zero"] == [["Z", "IH", "R", "OW"], ["Z", "IY", "R", "OW"]]  # every CMUdict variant
    assert lexicon["oh"] == [["OW"]]
    assert lexicon["zorblatt"][0][:3] == ["Z", "AO", "R"]  # not in CMUdict: festival's LTS
    assert tok.decode(tok.encode("zero oh")) == "Z IH R OW OW"  # training targets: first variant
    assert tok.encode("unheard") == [1]  # <unk>


@needs_festival
def test_festival_g2p_handles_odd_spellings():
    spelled = festival_g2p(["o'brien", "Qwrtz", 'say"what'])
    assert spelled["o'brien"][:2] == ["OW", "B"]
    assert all(p in cmu_phones() for prons in spelled.values() for p in prons)


@needs_festival
def test_phone_lexicon_search_gives_words(tmp_path):
    out = lang(tmp_path, "phone")
    tok = load_tokenizer(out)
    frames = ["S", "EH", "<blank>", "V", "AH", "N", "<blank>", "N", "AY", "<blank>", "N"]  # seven nine
    lp = posteriors(tok.table, frames)
    search = LexiconBeamSearch(tok, out / "lexicon.txt", beam_size=20)
    assert search(lp, torch.tensor([len(frames)])) == ["seven nine"]
    # a phone model with no lexicon given searches its own
    assert make_search(tok, out)(lp, torch.tensor([len(frames)])) == ["seven nine"]


def test_bpe_lexicon_search_and_greedy_agree_on_clean_posteriors(tmp_path):
    out = lang(tmp_path, "bpe", args=["--bpe-size", "40"])
    tok = load_tokenizer(out)
    pieces = [p for w in ("seven", "zero", "fox") for p in tok.spell(w)]
    frames = [x for p in pieces for x in (p, "<blank>")]
    lp = posteriors(tok.table, frames)
    lengths = torch.tensor([len(frames)])
    assert make_search(tok, out)(lp, lengths) == ["seven zero fox"]  # greedy
    assert LexiconBeamSearch(tok, out / "lexicon.txt")(lp, lengths) == ["seven zero fox"]


def test_char_tokenizer_needs_space(tmp_path):
    from speech.errors import SpeechError
    from speech.text.tokens import TokenTable

    with pytest.raises(SpeechError, match="<space>"):
        CharTokenizer(TokenTable(["<blank>", "<unk>", "a"]))


@pytest.mark.parametrize("unit", ["bpe", pytest.param("phone", marks=needs_festival)])
def test_train_and_decode_with_other_units(tmp_path, unit):
    """train-asr, decode-asr and transcribe's search all follow the lang dir's unit."""
    from support.feature_dirs import make_asr_dirs

    dirs = make_asr_dirs(tmp_path / "data")
    out = tmp_path / f"lang_{unit}"
    assert main(["prepare-lang", str(dirs["train"] / "text"), str(out), "--unit", unit, "--bpe-size", "30"]) == 0
    exp = tmp_path / "exp"
    assert main(["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]), "--lang-dir",
                 str(out), "--exp-dir", str(exp), "--device", "cpu", "model.hidden_size=16", "model.num_layers=1",
                 "trainer.epochs=1", "trainer.tensorboard=false", "cmvn=utterance", "max_frames=2000"]) == 0
    for name in load_tokenizer(out).files(out):
        assert (exp / name.name).read_bytes() == name.read_bytes()
    assert main(["decode-asr", str(exp), str(dirs["dev"]), str(exp / "decode")]) == 0
    words = {w for line in (exp / "decode" / "text").read_text().splitlines() for w in line.split()[1:]}
    vocabulary = set(read_lexicon(out / "lexicon.txt"))
    if unit == "phone":  # searched its lexicon: words only
        assert words <= vocabulary
    assert main(["score", str(dirs["dev"]), str(exp / "decode")]) == 0
