"""The TTS text frontend (speech tts-frontend): normalisation, pauses, stressed
pronunciations, the model's tokens, and agreement with the corpus's transcripts."""

from __future__ import annotations

import logging
import shutil

import pytest

from speech.cli import main
from speech.errors import SpeechError
from speech.text import g2p
from speech.text.sentences import WORD, normalize, sentence_pool, spoken
from speech.tts import frontend
from speech.tts.frontend import (PAUSES, POSITIONS, STRESS_LEVELS, TOKEN_SYMBOLS, Pause, Token, Word, analyse,
                                 analyse_many, format_tokens, format_words, split_sentences, token_ids, tokens)

needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="festival not installed")


def words(text: str) -> str:
    return " ".join(w for w in frontend.normalize(text) if isinstance(w, str))


@pytest.mark.parametrize("text, expected", [
    # numbers
    ("42", "forty two"),
    ("1,234", "one thousand two hundred thirty four"),
    ("1,000,000 ants", "one million ants"),
    ("3.14", "three point one four"),
    ("0.5 and .5", "zero point five and point five"),
    ("-5 below", "minus five below"),
    ("007", "zero zero seven"),
    ("pages 5-10", "pages five to ten"),
    # ordinals
    ("1st 2nd 3rd", "first second third"),
    ("the 21st and 112th", "the twenty first and one hundred twelfth"),
    # years: a 4-digit number is a year unless a unit follows or commas group it
    ("in 1990", "in nineteen ninety"),
    ("2005", "two thousand five"),
    ("2010", "twenty ten"),
    ("1900", "nineteen hundred"),
    ("1905", "nineteen oh five"),
    ("1500 people", "one thousand five hundred people"),
    ("1,990", "one thousand nine hundred ninety"),
    ("since 1066", "since ten sixty six"),
    ("1000", "one thousand"),
    ("the 1990s and '80s", "the nineteen nineties and eighties"),
    # money
    ("$3.50", "three dollars fifty cents"),
    ("$1", "one dollar"),
    ("$0.01", "one cent"),
    ("$.50", "fifty cents"),
    ("£5", "five pounds"),
    ("£1.50", "one pound fifty pence"),
    ("€20", "twenty euros"),
    ("$2 million", "two million dollars"),
    ("$1,250", "one thousand two hundred fifty dollars"),
    # percentages
    ("50%", "fifty percent"),
    ("2.5 %", "two point five percent"),
    # times
    ("3:30 pm", "three thirty p m"),
    ("3:30PM", "three thirty p m"),
    ("12:00", "twelve o'clock"),
    ("7:05", "seven oh five"),
    ("12:345", "twelve three hundred forty five"),  # not a time
    ("at 9 a.m.", "at nine a m"),
    # dates
    ("January 5", "january fifth"),
    ("Jan. 5, 2020", "january fifth twenty twenty"),
    ("5th of May", "fifth of may"),
    ("12 March", "twelfth of march"),
    ("May 2020", "may twenty twenty"),
    # abbreviations
    ("Mr. Smith", "mister smith"),
    ("Mrs. Smith", "missus smith"),
    ("MR. SMITH", "mister smith"),
    ("Ms. Smith", "ms smith"),  # CMUdict says "ms" as M IH1 Z
    ("Dr. Jones", "doctor jones"),
    ("St. Paul", "saint paul"),
    ("Baker St.", "baker street"),
    ("John Smith Jr.", "john smith junior"),
    ("cats vs. dogs", "cats versus dogs"),
    ("and so on, etc.", "and so on etc"),  # CMUdict says "etc" as "et cetera", the corpus writes it so
    ("e.g. this", "for example this"),
    ("i.e. that", "that is that"),
    ("No. 5", "number five"),
    ("#5", "number five"),
    ("No. I won't.", "no i won't"),
    ("approx. 10", "approximately ten"),
    ("mr. knightley", "mr knightley"),  # titles expand as titles are written: capitalised
    # acronyms: spelled when CMUdict lacks them or spells them itself
    ("the BBC", "the b b c"),
    ("the XQZ", "the x q z"),
    ("NASA", "nasa"),
    ("in the U.S.A.", "in the u s a"),
    ("J. R. R. Tolkien", "j r r tolkien"),
    ("I AM HERE", "i am here"),  # a text all in capitals shouts: no acronyms
    # everything else
    ("rock & roll", "rock and roll"),
    ("well-known", "well known"),
    ("COVID-19", "c o v i d nineteen"),
    ("café naïve", "cafe naive"),
    ("don\u2019t", "don't"),
    ("and/or", "and or"),
])
def test_normalisation(text, expected):
    out = words(text)
    assert out == expected
    assert all(WORD.fullmatch(w) for w in out.split())


@pytest.mark.parametrize("text, expected", [
    ("Hello, world.", "hello, world."),
    ("One; two: three (four) five - six -- seven \u2014 eight.", "one, two, three, four, five, six, seven, eight."),
    ('"Yes," he said... "Really?!"', "yes, he said. really?"),
    ("Wait!", "wait!"),
    ("What ... now", "what. now"),
    ("...and then", "and then"),  # a mark before the first word is not read
    ("no trailing mark", "no trailing mark"),
    ("It is 5 p.m.", "it is five p m."),  # the abbreviation's dot ends the text too
    ("Yours, etc.", "yours, etc."),
    ("On 5 May. Then 5 Jan. 2020.", "on fifth of may. then fifth of january twenty twenty."),
])
def test_punctuation_becomes_breaks(text, expected):
    assert format_words(analyse(text)) == expected


def test_unknown_characters_are_dropped_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="speech.tts.frontend"):
        assert words("Snow \u2603 and \u0436\u0443\u0436\u0443 \U0001F600 ^ here") == "snow and here"
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message == "dropped characters the frontend cannot read: '\u2603' '\u0436' '\u0443' '\U0001F600' '^'"


def test_readable_text_gives_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="speech.tts.frontend"):
        words("\u201cQuoted\u201d text \u2013 with caf\u00e9s\u2026")
    assert caplog.records == []


@pytest.mark.parametrize("text", ["", "   \n", "\u2603\u2603", "!!! ...", "\u0436\u0443\u043a"])
def test_nothing_to_pronounce_is_a_one_line_error(text):
    with pytest.raises(SpeechError, match="nothing to pronounce") as e:
        analyse(text)
    assert "\n" not in str(e.value)


def test_split_sentences_keeps_abbreviations_and_initials_inside():
    text = ('Mr. Smith went to St. Paul. He saw the U.S. Army! Was it? Yes... "Really." J. Smith paid $3.50 for '
            'No. 5 on Jan. 5 at 3 p.m. Then so do I. Etc.\n\nA paragraph without a stop\n\nLast')
    assert split_sentences(text) == [
        "Mr. Smith went to St. Paul.", "He saw the U.S. Army!", "Was it?", "Yes...", '"Really."',
        "J. Smith paid $3.50 for No. 5 on Jan. 5 at 3 p.m. Then so do I.", "Etc.", "A paragraph without a stop",
        "Last"]
    assert split_sentences("  ") == []


def test_analyse_gives_stressed_cmudict_pronunciations_and_keeps_the_final_break():
    items = analyse("Hello, the world?")
    assert items[0] == Word("hello", (("HH", "AH0", "L", "OW1"), ("HH", "EH0", "L", "OW1")))
    assert items[1] == Pause(",")
    assert items[2].pronunciations[0] == ("DH", "AH0")  # CMUdict's first, the default
    assert items[-1] == Pause("?")
    assert format_tokens(tokens(items)) == "SIL HH AH0 L OW1 , DH AH0 W ER1 L D ? SIL"


def test_a_letter_said_by_its_name_is_stressed():
    article, letter = analyse("a USA")[0], analyse("a USA")[-1]
    assert article.pronunciations[0] == ("AH0",)
    assert letter.text == "a" and letter.pronunciations[0] == ("EY1",)


@needs_festival
def test_words_cmudict_lacks_get_festivals_stressed_phones():
    (word,) = analyse("blorptastic")
    assert word.text == "blorptastic" and len(word.pronunciations) == 1
    pron = word.pronunciations[0]
    assert pron == ("B", "L", "R", "P", "T", "AE1", "S", "T", "IH0", "K")
    assert all(p.rstrip("012") in g2p.cmu_phones() for p in pron)


@needs_festival
def test_g2p_stressless_functions_are_the_stressed_ones_without_digits():
    stressed = g2p.festival_g2p_stressed(["hello", "zorblatt"])
    assert stressed["hello"] == ["HH", "AH0", "L", "OW1"]  # festival's syllables ((hh ax) 0) ((l ow) 1)
    assert g2p.festival_g2p(["hello", "zorblatt"]) == {w: g2p.strip_stress(p) for w, p in stressed.items()}
    prons, guessed = g2p.pronunciations(["zero", "zorblatt"])
    assert prons["zero"] == [["Z", "IH", "R", "OW"], ["Z", "IY", "R", "OW"]] and guessed == ["zorblatt"]
    stressed_prons, _ = g2p.pronunciations_stressed(["zero", "zorblatt"])
    assert stressed_prons["zero"] == [["Z", "IH1", "R", "OW0"], ["Z", "IY1", "R", "OW0"]]
    assert prons["zorblatt"] == [g2p.strip_stress(stressed_prons["zorblatt"][0])]
    assert g2p.cmu_dictionary()["read"] == [["R", "EH", "D"], ["R", "IY", "D"]]
    assert g2p.cmu_dictionary_stressed()["read"] == [["R", "EH1", "D"], ["R", "IY1", "D"]]


def test_analyse_many_asks_festival_once_for_all_new_words(monkeypatch):
    calls = []

    def fake_festival(words):
        calls.append(sorted(words))
        return {w: ["Z", "UW1"] for w in words}

    monkeypatch.setattr(frontend, "festival_g2p_stressed", fake_festival)
    monkeypatch.setattr(frontend, "_GUESSED", {})
    out = analyse_many(["the zzyzxa", "one qqxv and zzyzxa"])
    assert calls == [["qqxv", "zzyzxa"]]
    assert out[0][1] == Word("zzyzxa", (("Z", "UW1"),))
    analyse("zzyzxa qqxv")  # remembered: no second process
    assert len(calls) == 1


def test_tokens_edges_positions_and_stress():
    items = [Word("a", (("AH0",), ("EY1",))), Pause(","), Word("cat", (("K", "AE1", "T"),)),
             Word("to", (("T", "UW1"),)), Word("dictionary", (("D", "IH1", "K", "SH", "AH0", "N", "EH2", "R", "IY0"),)),
             Pause(".")]
    toks = tokens(items)
    assert toks[0] == toks[-1] == Token("SIL", 0, 0)
    assert toks[1] == Token("AH", 1, 4)  # the only phone of its word; CMU stress 0 -> 1
    assert toks[2] == Token(",", 0, 0)
    assert toks[3:6] == [Token("K", 0, 1), Token("AE", 2, 2), Token("T", 0, 3)]
    assert toks[6:8] == [Token("T", 0, 1), Token("UW", 2, 3)]
    assert [t.stress for t in toks[8:17]] == [0, 2, 0, 0, 1, 0, 3, 0, 1]
    assert [t.position for t in toks[8:17]] == [1, 2, 2, 2, 2, 2, 2, 2, 3]
    assert toks[17] == Token(".", 0, 0) and len(toks) == 19
    assert format_tokens(toks) == "SIL AH0 , K AE1 T T UW1 D IH1 K SH AH0 N EH2 R IY0 . SIL"
    assert tokens([]) == [Token("SIL", 0, 0), Token("SIL", 0, 0)]


def test_choose_picks_each_words_pronunciation_even_a_stressless_one():
    items = [Pause(","), Word("a", (("AH0",), ("EY1",))), Word("cat", (("K", "AE1", "T"),))]
    seen = []

    def choose(i, word):
        seen.append((i, word.text))
        return ("EY1",) if word.text == "a" else ("K", "AE", "T")

    toks = tokens(items, choose=choose)
    assert seen == [(1, "a"), (2, "cat")]
    assert format_tokens(toks) == "SIL , EY1 K AE0 T SIL"  # a stressless vowel counts as unstressed
    assert [t.stress for t in toks] == [0, 0, 2, 0, 1, 0, 0]


@pytest.mark.parametrize("pron", [(), ("XX",), ("K1",), ("AH7",), ("SIL",)])
def test_tokens_refuse_what_is_not_a_pronunciation(pron):
    with pytest.raises(ValueError):
        tokens([Word("x", (pron,))])


def test_pause_symbols_are_checked():
    with pytest.raises(ValueError, match="not one of"):
        Pause(";")


def test_token_table_and_ids():
    assert TOKEN_SYMBOLS[0] == "<pad>" and TOKEN_SYMBOLS[1:6] == PAUSES
    assert TOKEN_SYMBOLS[6:] == g2p.cmu_phones() and len(TOKEN_SYMBOLS) == 45
    toks = tokens(analyse("Hello, the world? Yes!"))
    ids, stress, position = token_ids(toks)
    assert len(ids) == len(stress) == len(position) == len(toks)
    assert [TOKEN_SYMBOLS[i] for i in ids] == [t.phone for t in toks]
    assert 0 not in ids and all(0 < i < len(TOKEN_SYMBOLS) for i in ids)
    assert all(0 <= s < STRESS_LEVELS for s in stress) and all(0 <= p < POSITIONS for p in position)
    assert ids[:2] == [TOKEN_SYMBOLS.index("SIL"), TOKEN_SYMBOLS.index("HH")]


@pytest.fixture(scope="module")
def pool():
    return sentence_pool()


def test_the_corpus_sentences_give_their_transcripts_words(pool):
    """What the corpus voice read (spoken) must give the words of its transcript, or the
    aligner's words would not be the model's."""
    checked = 0
    for sentence, entry in pool.items():
        expected = normalize(sentence, 0, 10**6).split()
        for text in (spoken(sentence), entry.spoken):
            if text is None:
                continue
            got = [w for w in frontend.normalize(text) if isinstance(w, str)]
            assert got == expected, text
            checked += 1
    assert checked >= len(pool) > 10_000


def test_cli_prints_words_and_tokens_of_each_sentence(capsys):
    assert main(["tts-frontend", "Hello, world. The cat?", "Sit!"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "hello, world.", "SIL HH AH0 L OW1 , W ER1 L D . SIL",
        "the cat?", "SIL DH AH0 K AE1 T ? SIL",
        "sit!", "SIL S IH1 T ! SIL"]


def test_cli_reads_a_file(tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("It costs $1.\n\nThe cat.\n", encoding="utf-8")
    assert main(["tts-frontend", "--file", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines()[::2] == ["it costs one dollar.", "the cat."]


@pytest.mark.parametrize("argv, message", [
    (["\u2603"], "nothing to pronounce in '\u2603'"),
    ([], "no text"),
    (["--file", "/nonexistent/lines.txt"], "/nonexistent/lines.txt: cannot read"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(["tts-frontend", *argv]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the warning of a dropped character, if logging shows it
    assert last.startswith("speech tts-frontend: error: ") and message in last and "Traceback" not in err
