"""Split a data directory into N parts for N parallel jobs (Kaldi's ``split_data.sh``).

Parts are ``SRC/split{N}/1`` .. ``SRC/split{N}/N``, each a complete data directory. By
speaker (the default) every speaker lies in one part, so per-speaker steps (CMVN,
adaptation) see all of a speaker's data; parts are contiguous runs of the sorted speakers
whose largest utterance count is as small as it can be. By utterance, parts are contiguous
runs of sorted utterances whose sizes differ by at most one.

A split is reused while it is newer than every file of SRC and was made the same way; a
marker written after the last part makes an interrupted split count as absent.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from speech.data.datadir import FEATURE_DESCRIPTIONS, SPK2UTT, TABLES, DataDir, copy_feature_config
from speech.errors import DataDirError
from speech.stage import is_complete, read_done, write_done

_MARKER = ".split_complete"


def split_dir(src: str | os.PathLike, nj: int) -> Path:
    """Where :func:`split_data_dir` puts the parts: ``src/split{nj}``."""
    return Path(src) / f"split{nj}"


def balanced_contiguous_split(sizes: list[int], n: int) -> list[list[int]]:
    """Cut ``sizes`` into ``n`` non-empty contiguous runs minimising the largest run total.

    Returns ``n`` lists of indices into ``sizes``. Needs 1 <= n <= len(sizes).
    """
    if not 1 <= n <= len(sizes):
        raise ValueError(f"cannot cut {len(sizes)} items into {n} non-empty runs")

    def runs_needed(capacity: int) -> int:
        runs, load = 1, 0
        for size in sizes:
            if load + size > capacity:
                runs, load = runs + 1, 0
            load += size
        return runs

    # The smallest capacity with which greedy packing needs at most n runs is optimal.
    lo, hi = max(sizes), sum(sizes)
    while lo < hi:
        mid = (lo + hi) // 2
        if runs_needed(mid) <= n:
            hi = mid
        else:
            lo = mid + 1
    runs: list[list[int]] = [[]]
    load = 0
    for i, size in enumerate(sizes):
        # Start a new run when this item would overflow the capacity, or when the items
        # left are just enough to give each remaining run one.
        runs_after_this = n - len(runs)
        if runs[-1] and (load + size > lo or len(sizes) - i <= runs_after_this):
            runs.append([])
            load = 0
        runs[-1].append(i)
        load += size
    return runs


def _source_files(src: Path) -> list[Path]:
    names = [*(spec.name for spec in TABLES), SPK2UTT, *FEATURE_DESCRIPTIONS]
    return [src / n for n in names if (src / n).exists()]


def _split_info(src: Path, mode: str) -> dict:
    """How the split was made: its mode and the source files it was made from (the done
    marker's info). The files are listed because removing one (say feats.scp) leaves the
    others' times unchanged but must still invalidate the parts that carry it."""
    return {"mode": mode, "sources": [f.name for f in _source_files(src)]}


def split_data_dir(src: str | os.PathLike, nj: int, by_speaker: bool = True) -> list[Path]:
    """Split ``src`` into ``nj`` data directories ``src/split{nj}/{1..nj}``; return their paths.

    Raises DataDirError when there are fewer speakers (by speaker) or utterances than
    ``nj``. Reuses an existing split made the same way that is newer than ``src``'s files.
    """
    src = Path(src)
    if nj < 1:
        raise DataDirError(f"cannot split {src} into {nj} parts; the number of jobs must be at least 1")
    out = split_dir(src, nj)
    parts = [out / str(j) for j in range(1, nj + 1)]
    mode = "speaker" if by_speaker else "utterance"
    info = _split_info(src, mode)
    if is_complete([out / _MARKER, *(p / "utt2spk" for p in parts)], _source_files(src),
                   lambda: read_done(out / _MARKER) == info):
        return parts
    d = DataDir.read(src)
    if by_speaker:
        spk2utt = d.spk2utt()
        if nj > len(spk2utt):
            raise DataDirError(
                f"{src}: cannot split {len(spk2utt)} speakers into {nj} parts by speaker; "
                f"use at most {len(spk2utt)} jobs, or split by utterance (--per-utt)"
            )
        groups = list(spk2utt.values())
        runs = balanced_contiguous_split([len(g) for g in groups], nj)
        members = [[u for i in run for u in groups[i]] for run in runs]
    else:
        utts = d.utterances()
        if nj > len(utts):
            raise DataDirError(f"{src}: cannot split {len(utts)} utterances into {nj} parts; use at most {len(utts)} jobs")
        members = [utts[len(utts) * j // nj: len(utts) * (j + 1) // nj] for j in range(nj)]
    (out / _MARKER).unlink(missing_ok=True)
    for part, utts in zip(parts, members):
        sub = d.subset(utts, part)
        sub.write()
        copy_feature_config(src, part, sub)
    write_done(out / _MARKER, info)
    return parts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech split-data-dir",
        description="Split a data directory into NJ parts SRC/splitNJ/{1..NJ} (Kaldi split_data.sh).",
    )
    parser.add_argument("src", help="the data directory to split")
    parser.add_argument("nj", type=int, help="number of parts")
    parser.add_argument("--per-utt", action="store_true",
                        help="split by utterance (a speaker may span parts) instead of by speaker")
    args = parser.parse_args(argv)
    for part in split_data_dir(args.src, args.nj, by_speaker=not args.per_utt):
        print(part)
    return 0
