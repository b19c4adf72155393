"""The `speech` command: every stage is listed and has --help; user errors are one line."""

import importlib

import pytest

from speech.cli import STAGES, main


def test_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in STAGES:
        assert name in out


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_has_help(name, capsys):
    module, func = STAGES[name][0].split(":")
    assert callable(getattr(importlib.import_module(module), func))
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert f"speech {name}" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys):
    assert main(["no-such-stage"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_user_error_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["decode-asr", str(tmp_path / "nomodel"), str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "not a trained model directory" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
