"""Kaldi ark files written atomically, with the scp entries that point into them.

kaldiio can write an ark and its scp together, but the scp then names the file it wrote;
here the matrices go to a temporary file that is renamed onto the ark's name only when
complete, and the scp entries name the final file, so a killed job leaves no ark that
looks whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import kaldiio
import numpy as np

from speech.fileio import atomic_write


class ArkWriter:
    """Appends matrices to a temporary ark; ``entries`` maps key -> ``"<ark path>:<offset>"``."""

    def __init__(self, fd, final_path: Path):
        self._fd = fd
        self._final = str(final_path)
        self.entries: dict[str, str] = {}

    def write(self, key: str, matrix: np.ndarray) -> None:
        """Append ``matrix`` (2-D, float32 or float64; stored uncompressed) under ``key``."""
        if key in self.entries:
            raise ValueError(f"key '{key}' written twice to {self._final}")
        # The scp offset points just after "<key> ", where the binary matrix header starts.
        offset = self._fd.tell() + len(key.encode("utf-8")) + 1
        kaldiio.save_ark(self._fd, {key: matrix})
        self.entries[key] = f"{self._final}:{offset}"


@contextlib.contextmanager
def ark_writer(path: str | os.PathLike) -> Iterator[ArkWriter]:
    """Write an ark at ``path`` (made absolute, as Kaldi's feature scripts do) atomically."""
    final = Path(path).absolute()
    with atomic_write(final, "wb") as fd:
        yield ArkWriter(fd, final)


def ark_paths(scp: dict[str, str]) -> set[str]:
    """The ark files that the values of an scp table (``path:offset``) point into."""
    return {value.rsplit(":", 1)[0] for value in scp.values()}
