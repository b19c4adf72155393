"""Copy a subset of a data directory's utterances to a new, complete data directory.

Selections follow Kaldi's ``subset_data_dir.sh``: ``--utt-list``/``--spk-list`` (first
field of each line; ids the source lacks are ignored), ``--first N``/``--last N``
(utterances in sorted order), ``--shortest N`` (by utt2dur, else segment times, else
utt2num_frames), and ``--random N --seed S``. The result has wav.scp cut down to the
recordings it uses, cmvn.scp to its speakers, and a fresh spk2utt.
"""

from __future__ import annotations

import argparse
import os
import random as random_module
from pathlib import Path

from speech.data.datadir import DataDir, copy_feature_config
from speech.errors import DataDirError
from speech.fileio import kaldi_sort_key

_SELECTORS = ("utt_list", "spk_list", "first", "last", "shortest", "random")


def _read_ids(path: str | os.PathLike) -> list[str]:
    """First field of every non-blank line."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such list file")
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def durations(d: DataDir) -> dict[str, float]:
    """Each utterance's length, from utt2dur, else segment times, else utt2num_frames.

    Raises DataDirError when none of these gives every utterance a length.
    """
    if d.utt2dur is not None and d.utt2dur.keys() >= d.utt2spk.keys():
        return {u: d.utt2dur[u] for u in d.utt2spk}
    if d.segments is not None and all(u in d.segments and d.segments[u].end != -1 for u in d.utt2spk):
        return {u: d.segments[u].end - d.segments[u].start for u in d.utt2spk}
    if d.utt2num_frames is not None and d.utt2num_frames.keys() >= d.utt2spk.keys():
        return {u: float(d.utt2num_frames[u]) for u in d.utt2spk}  # same order as durations
    raise DataDirError(f"{d.path}: no utterance lengths (utt2dur); create them with: speech get-utt2dur {d.path}")


def select_utterances(
    d: DataDir,
    *,
    utt_list: str | os.PathLike | None = None,
    spk_list: str | os.PathLike | None = None,
    first: int | None = None,
    last: int | None = None,
    shortest: int | None = None,
    random: int | None = None,
    seed: int = 0,
) -> list[str]:
    """The utterances of ``d`` one selector picks (exactly one must be given), sorted."""
    given = {k: v for k, v in dict(utt_list=utt_list, spk_list=spk_list, first=first, last=last,
                                   shortest=shortest, random=random).items() if v is not None}
    if len(given) != 1:
        raise DataDirError(f"give exactly one of --utt-list, --spk-list, --first, --last, --shortest, --random (got {len(given)})")
    (how, arg), = given.items()
    utts = d.utterances()
    if how == "utt_list":
        wanted = set(_read_ids(arg))
        chosen = [u for u in utts if u in wanted]
    elif how == "spk_list":
        wanted = set(_read_ids(arg))
        chosen = [u for u in utts if d.utt2spk[u] in wanted]
    else:
        n = int(arg)
        if not 0 < n <= len(utts):
            raise DataDirError(
                f"{d.path}: cannot select {n} of its {len(utts)} utterances; give a number from 1 to {len(utts)}"
            )
        if how == "first":
            chosen = utts[:n]
        elif how == "last":
            chosen = utts[-n:]
        elif how == "shortest":
            lengths = durations(d)
            chosen = sorted(utts, key=lambda u: lengths[u])[:n]  # stable: ties keep sorted order
        else:
            chosen = random_module.Random(seed).sample(utts, n)
    if not chosen:
        raise DataDirError(f"{arg}: none of its ids is in {d.path}; check that the list belongs to this directory")
    return sorted(chosen, key=kaldi_sort_key)


def subset_data_dir(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    utt_list: str | os.PathLike | None = None,
    spk_list: str | os.PathLike | None = None,
    first: int | None = None,
    last: int | None = None,
    shortest: int | None = None,
    random: int | None = None,
    seed: int = 0,
) -> DataDir:
    """Write the utterances of ``src`` that one selector picks (see :func:`select_utterances`)
    to ``dest`` as a complete data directory, and return it."""
    src, dest = Path(src), Path(dest)
    if dest.resolve() == src.resolve():
        raise DataDirError(f"{dest}: the destination is the source directory; choose another destination")
    d = DataDir.read(src)
    chosen = select_utterances(d, utt_list=utt_list, spk_list=spk_list, first=first, last=last,
                               shortest=shortest, random=random, seed=seed)
    sub = d.subset(chosen, dest)
    sub.write()
    copy_feature_config(src, dest, sub)
    return sub


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech subset-data-dir",
        description="Copy a subset of a data directory to a new one (Kaldi subset_data_dir.sh).",
    )
    parser.add_argument("src", help="source data directory")
    parser.add_argument("dest", help="destination data directory (created)")
    pick = parser.add_mutually_exclusive_group(required=True)
    pick.add_argument("--utt-list", metavar="FILE", help="keep the utterances listed (first field per line)")
    pick.add_argument("--spk-list", metavar="FILE", help="keep all utterances of the speakers listed")
    pick.add_argument("--first", type=int, metavar="N", help="the first N utterances (sorted order)")
    pick.add_argument("--last", type=int, metavar="N", help="the last N utterances (sorted order)")
    pick.add_argument("--shortest", type=int, metavar="N", help="the N shortest utterances (needs utt2dur)")
    pick.add_argument("--random", type=int, metavar="N", help="N utterances drawn at random (see --seed)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --random (default 0)")
    args = parser.parse_args(argv)
    selection = {k: getattr(args, k) for k in _SELECTORS}
    sub = subset_data_dir(args.src, args.dest, seed=args.seed, **selection)
    print(f"{args.dest}: {len(sub.utt2spk)} utterances, {len(sub.spk2utt())} speakers (subset of {args.src})")
    return 0
