"""speech/stage.py: one rule for skipping a complete stage, and done markers."""

import os

from speech.errors import SpeechError
from speech.stage import is_complete, newer_than, read_done, skip, write_done


def touch(path, mtime_ns):
    path.write_text(path.name)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_outputs_must_all_exist_and_be_newer_than_every_present_input(tmp_path):
    src = touch(tmp_path / "in", 2_000_000_000)
    out1, out2 = touch(tmp_path / "out1", 3_000_000_000), touch(tmp_path / "out2", 4_000_000_000)
    assert newer_than([out1, out2], [src, tmp_path / "optional-input-that-is-absent"])
    assert not newer_than([out1, tmp_path / "missing"], [src])
    assert not newer_than([], [src])
    touch(src, 3_500_000_000)  # newer than one output
    assert not newer_than([out1, out2], [src])


def test_check_decides_and_a_malformed_leftover_is_incomplete(tmp_path):
    out = touch(tmp_path / "out", 3_000_000_000)
    assert is_complete([out], check=lambda: True)
    assert not is_complete([out], check=lambda: False)

    def broken():
        raise SpeechError("out:1: garbage")

    assert not is_complete([out], check=broken)


def test_skip_prints_one_line_and_force_redoes(tmp_path, capsys):
    out = touch(tmp_path / "out", 3_000_000_000)
    assert skip("speech x", f"{out} is up to date", [out])
    assert capsys.readouterr().out == f"speech x: {out} is up to date; skipping (--force to redo)\n"
    assert not skip("speech x", "up to date", [out], force=True)
    assert not skip("speech x", "up to date", [tmp_path / "absent"])
    assert capsys.readouterr().out == ""


def test_done_marker_round_trip(tmp_path):
    marker = tmp_path / "stage.done"
    assert read_done(marker) is None
    write_done(marker, {"best_epoch": 3})
    assert read_done(marker) == {"best_epoch": 3}
    write_done(marker)
    assert read_done(marker) == {}
    marker.write_text("[1, 2]")  # not ours
    assert read_done(marker) is None
