"""Checking the `speech` command's contract for user errors: exit code 1, one line on
stderr naming what is wrong, no traceback."""

from speech.cli import main


def fails_in_one_line(capsys, argv: list[str], *expected: str) -> str:
    """Run ``speech ARGV`` in-process; assert the contract and that stderr holds every
    ``expected`` text; return stderr."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    return err
