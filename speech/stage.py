"""One convention for every stage: skip when complete, done markers, ``--force``.

A stage is a library function (``compute_features``, ``make_graph``, ...) that takes
``force`` and returns False when it skipped, plus a thin ``main(argv)``. Its outputs are
*complete* when every one exists, none is older than an input, and the stage's own check
holds (features for every utterance, the same config, ...). A killed stage must never look
complete: outputs are written atomically (``speech.fileio.atomic_write``), and a stage whose
outputs are many files writes a done marker last (:func:`write_done`) and names it among
its outputs, so that a re-run redoes whatever the kill interrupted.

Every check lives here so that the seven stages that skip do so by one rule, and print one
kind of line: ``<stage>: <what>; skipping (--force to redo)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from speech.errors import SpeechError
from speech.fileio import atomic_write

Check = Callable[[], bool]


def newer_than(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike] = ()) -> bool:
    """Every output is a file, and the oldest of them is newer than every input that exists
    (an input that does not exist, such as an optional ``segments``, cannot be newer)."""
    outputs = [Path(p) for p in outputs]
    if not outputs or not all(p.is_file() for p in outputs):
        return False
    present = [Path(p) for p in inputs if Path(p).exists()]
    if not present:
        return True
    return min(p.stat().st_mtime_ns for p in outputs) > max(p.stat().st_mtime_ns for p in present)


def is_complete(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike] = (),
                check: Check | None = None) -> bool:
    """:func:`newer_than`, then the stage's own ``check``. A check that meets a malformed
    leftover (its SpeechError) finds the outputs incomplete, so the stage redoes them."""
    if not newer_than(outputs, inputs):
        return False
    if check is None:
        return True
    try:
        return bool(check())
    except SpeechError:
        return False


def skip(stage: str, what: str, outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike] = (),
         check: Check | None = None, force: bool = False) -> bool:
    """True, after printing ``<stage>: <what>; skipping (--force to redo)``, when ``force`` is
    not set and the outputs are complete (:func:`is_complete`); else False."""
    if force or not is_complete(outputs, inputs, check):
        return False
    print(f"{stage}: {what}; skipping (--force to redo)")
    return True


def write_done(path: str | os.PathLike, info: dict | None = None) -> None:
    """The done marker of a stage, written last and atomically: JSON ``info`` (what the run
    achieved, for the reader; ``{}`` when there is nothing to say)."""
    with atomic_write(path) as f:
        json.dump(info or {}, f, indent=1)
        f.write("\n")


def read_done(path: str | os.PathLike) -> dict | None:
    """The info of a done marker, or None when there is none (or it is not one of ours)."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None
