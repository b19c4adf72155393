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


def test_no_command_prints_usage_to_stderr_and_exits_2(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: speech <command>") and "compute-fbank" in err


def test_user_error_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["decode-asr", str(tmp_path / "nomodel"), str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "not a trained model directory" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_malformed_yaml_config_is_one_line_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "wav.scp").write_text("u1 /nonexistent.wav\n")
    (tmp_path / "utt2spk").write_text("u1 s1\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("num_mel_bins: 40\nframe_shift_ms: [10\nframe_length_ms: 25\n")
    assert main(["compute-fbank", str(tmp_path), "--config", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"speech compute-fbank: error: {broken}:3: not valid YAML (did not find expected ',' "
                                "or ']'); correct the file"]
