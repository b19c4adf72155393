"""The language directory stage (speech prepare-lang): tokens.txt and words.txt."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from speech.cli import main
from speech.errors import SpeechError
from speech.text.prepare_lang import prepare_lang, read_transcripts
from speech.text.tokens import TokenTable


def write_text(tmp_path, content: str):
    path = tmp_path / "text"
    path.write_text(content, encoding="utf-8")
    return path


def test_tokens_and_words(tmp_path):
    text = write_text(tmp_path, "u2 two one\nu1 one zero\nu3 Zoë\nu4\n")  # u4: empty transcript is valid
    lang = tmp_path / "lang"
    assert main(["prepare-lang", str(text), str(lang)]) == 0

    # Characters in byte order after the three specials; "ë" (UTF-8 0xC3 0xAB) sorts after ASCII.
    assert (lang / "tokens.txt").read_text().splitlines() == [
        f"{s} {i}" for i, s in enumerate(
            ["<blank>", "<unk>", "<space>", "Z", "e", "n", "o", "r", "t", "w", "z", "ë"])
    ]
    # Kaldi prepare_lang.sh: <eps> 0, words (with <unk>) in LC_ALL=C order, then #0 <s> </s>.
    assert (lang / "words.txt").read_text() == (
        "<eps> 0\n<unk> 1\nZoë 2\none 3\ntwo 4\nzero 5\n#0 6\n<s> 7\n</s> 8\n"
    )

    table = TokenTable.from_file(lang / "tokens.txt")
    assert table.symbols[0] == "<blank>"
    assert table.decode(table.encode("two one zero")) == "two one zero"
    assert table.decode(table.encode("Zoë  one")) == "Zoë one"


def test_skips_when_up_to_date_unless_forced(tmp_path, capsys):
    text = write_text(tmp_path, "u1 a b\n")
    os.utime(text, (1_000_000_000, 1_000_000_000))  # clearly older than the outputs, on any file system
    lang = tmp_path / "lang"
    assert prepare_lang(text, lang) is True
    assert prepare_lang(text, lang) is False
    assert main(["prepare-lang", str(text), str(lang)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert prepare_lang(text, lang, force=True) is True

    # A newer transcript file makes the stage run again and pick up the new word.
    text.write_text("u1 a b c\n", encoding="utf-8")
    later = (lang / "words.txt").stat().st_mtime + 10
    os.utime(text, (later, later))
    assert prepare_lang(text, lang) is True
    assert "c 4" in (lang / "words.txt").read_text().splitlines()


def test_skip_is_one_line_naming_the_stage_from_the_library_too(tmp_path, capsys):
    text = write_text(tmp_path, "u1 a b\n")
    os.utime(text, (1_000_000_000, 1_000_000_000))
    lang = tmp_path / "lang"
    assert prepare_lang(text, lang) is True
    capsys.readouterr()
    assert prepare_lang(text, lang) is False
    assert capsys.readouterr().out == (f"prepare-lang: {lang}: tokens.txt, lexicon.txt and words.txt are up to date "
                                       f"with {text}; skipping (--force to redo)\n")


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("u1 a\n\nu2 b\n", 2, "empty line"),
        ("u1 a\nu1 b\n", 2, "appears twice"),
        ("u1 a\nu2 b #0\n", 2, "reserved symbol"),
        ("u1 <s> a\n", 1, "reserved symbol"),
        (b"u1 a\nu2 \xff\n", 2, "not UTF-8"),
    ],
)
def test_malformed_text_names_file_and_line(tmp_path, capsys, content, line, message):
    path = tmp_path / "text"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpeechError, match=f"{path}:{line}: .*{message}"):
        read_transcripts(path)
    assert main(["prepare-lang", str(path), str(tmp_path / "lang")]) == 1
    assert f"{path}:{line}:" in capsys.readouterr().err
    assert not (tmp_path / "lang" / "tokens.txt").exists()


def test_missing_or_empty_text(tmp_path):
    with pytest.raises(SpeechError, match="no such file"):
        read_transcripts(tmp_path / "nope")
    with pytest.raises(SpeechError, match="empty"):
        read_transcripts(write_text(tmp_path, ""))


def test_scoring_and_lang_stages_do_not_import_torch():
    code = (
        "import sys, speech.cli, speech.asr.score, speech.asr.results, speech.text.prepare_lang\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lexicon_spells_every_word_in_characters(tmp_path):
    from speech.text.prepare_lang import prepare_lang

    text = tmp_path / "text"
    text.write_text("a-1 one two\na-2 two oh\n")
    prepare_lang(text, tmp_path / "lang")
    lines = (tmp_path / "lang" / "lexicon.txt").read_text().splitlines()
    assert lines == ["oh o h", "one o n e", "two t w o"]
