"""Small file helpers shared by every stage: atomic writes and Kaldi-style key/value files.

Outputs are written to a temporary file in the same directory and renamed into place, so a
killed stage never leaves a half-written file that a re-run would take as complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from speech.errors import SpeechError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (safetensors,
    torch.save, OpenFst); on success it is synced to disk and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); outputs get the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        os.close(fd)
        yield Path(tmp)
        # fsync before the rename: after a crash the name then points at the whole file,
        # never at an empty one that a re-run would take as complete
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``
    (:func:`atomic_path`).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
        yield f


def kaldi_sort_key(key: str) -> bytes:
    """Sort key matching ``LC_ALL=C sort``: byte order of the UTF-8 encoding."""
    return key.encode("utf-8")


def read_key_value(path: str | os.PathLike, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi table file (``<key> <value...>`` per line) into an ordered dict.

    Raises SpeechError naming ``path:line`` for a missing file, a line without a value, a
    duplicated key, or text that is not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechError(f"{path}: no such file")
    table: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    raise SpeechError(f"{path}:{lineno}: empty line; remove it")
                parts = line.split(maxsplit=1)
                key = parts[0]
                value = parts[1].strip() if len(parts) > 1 else ""
                if not value and not allow_empty_value:
                    raise SpeechError(f"{path}:{lineno}: '{key}' has no value; expected '<key> <value>'")
                if key in table:
                    raise SpeechError(f"{path}:{lineno}: key '{key}' appears twice; keep one line per key")
                table[key] = value
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    return table


def not_utf8(path: str | os.PathLike) -> SpeechError:
    """The error for a text file that does not decode as UTF-8, naming the line of its first
    bad byte (a decoder reading ahead in blocks cannot say which line that is)."""
    lineno = 1
    with open(path, "rb") as f:
        # b"\n" never occurs inside a UTF-8 sequence, so each line decodes on its own.
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                break
    return SpeechError(f"{path}:{lineno}: not UTF-8 text; convert the file to UTF-8 (e.g. with iconv)")


def write_key_value(path: str | os.PathLike, table: dict[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write ``<key> <value>`` lines sorted as ``LC_ALL=C sort`` would, atomically."""
    items = table.items() if isinstance(table, dict) else table
    with atomic_write(path) as f:
        for key, value in sorted(items, key=lambda kv: kaldi_sort_key(kv[0])):
            f.write(f"{key} {value}\n" if value != "" else f"{key}\n")
