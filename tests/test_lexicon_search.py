"""Lexicon-constrained beam search: only lexicon words come out, even where greedy
decoding of the same posteriors spells a non-word."""

import pytest
import torch

from speech.asr.lexicon_search import LexiconBeamSearch
from speech.ctc import greedy_ctc_decode
from speech.errors import SpeechError
from support.posteriors import posteriors
from speech.text.tokenizer import CharTokenizer
from speech.text.tokens import build_char_table


@pytest.fixture
def setup(tmp_path):
    tokens = build_char_table(["one two five four"])
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("five f i v e\nfour f o u r\none o n e\ntwo t w o\n")
    return tokens, lexicon


def test_beam_search_returns_lexicon_words_where_greedy_does_not(setup):
    tokens, lexicon = setup
    # "f i v n" then "t w o": greedy spells the non-word "fivn"
    frames = ["f", "<blank>", "i", "v", "n", "<blank>", "<space>", "t", "<blank>", "w", "o", "<blank>"]
    lp = posteriors(tokens, frames)
    lengths = torch.tensor([len(frames)])
    assert tokens.decode(greedy_ctc_decode(lp, lengths)[0]) == "fivn two"
    assert LexiconBeamSearch(CharTokenizer(tokens), lexicon, beam_size=20)(lp, lengths) == ["five two"]


def test_clean_posteriors_decode_exactly(setup):
    tokens, lexicon = setup
    frames = ["<blank>", "o", "n", "e", "<space>", "f", "o", "u", "r", "<blank>"]
    lp = posteriors(tokens, frames)
    assert LexiconBeamSearch(CharTokenizer(tokens), lexicon)(lp, torch.tensor([10])) == ["one four"]


def test_lexicon_with_unknown_tokens_is_a_clear_error(setup, tmp_path):
    tokens, _ = setup
    bad = tmp_path / "bad.txt"
    bad.write_text("one o n e\nzebra z e b r a\n")
    with pytest.raises(SpeechError, match=r"bad.txt:2: .*unknown: z b a"):
        LexiconBeamSearch(CharTokenizer(tokens), bad)


def test_blank_line_in_the_lexicon_names_its_line(setup, tmp_path):
    tokens, _ = setup
    bad = tmp_path / "blank.txt"
    bad.write_text("one o n e\n\nfour f o u r\n")
    with pytest.raises(SpeechError, match=r"blank.txt:2: expected '<word> <token> \.\.\.'"):
        LexiconBeamSearch(CharTokenizer(tokens), bad)
