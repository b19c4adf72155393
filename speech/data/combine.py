"""Combine several data directories into one (Kaldi's ``combine_data.sh``).

Utterance ids must be unique across the sources; a recording id may repeat only when it
names the same audio. An optional file is kept only when every source has it (a partial
``text`` or ``feats.scp`` would silently lose utterances later); each one left out is
named with the sources that lack it. When only some sources have ``segments``, the others
get whole-recording segments (``<utt> <utt> 0 -1``) so the result stays consistent.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from speech.data.datadir import FEATURE_DESCRIPTIONS, TABLES, DataDir, Segment, few_ids
from speech.errors import DataDirError
from speech.fileio import atomic_write

# Tables that are merged by the rules above rather than carried only when all have them.
_ALWAYS = ("wav_scp", "utt2spk", "segments")
_FEATURE_TABLES = ("feats_scp", "utt2num_frames", "cmvn_scp")


def _conflict(dirs: list[DataDir], attr: str, file: str) -> str | None:
    """Describe the first key that two of ``dirs`` give different values in one table."""
    seen: dict[str, tuple[object, Path]] = {}
    for d in dirs:
        for key, value in getattr(d, attr).items():
            if key in seen and seen[key][0] != value:
                return f"'{key}' has different values in {seen[key][1] / file} and {d.path / file}"
            seen.setdefault(key, (value, d.path))
    return None


def _merge(dirs: list[DataDir], attr: str, file: str) -> dict:
    """Union of one table over ``dirs``; raises DataDirError when a key has two values."""
    conflict = _conflict(dirs, attr, file)
    if conflict:
        raise DataDirError(f"{conflict}; give one of them another id")
    merged: dict = {}
    for d in dirs:
        merged.update(getattr(d, attr))
    return merged


def combine_data_dirs(dest: str | os.PathLike, srcs: list[str | os.PathLike]) -> list[str]:
    """Write the union of the data directories ``srcs`` to ``dest``; return notes on what
    was left out or made up. Raises DataDirError naming duplicated utterance ids."""
    dest = Path(dest)
    if not srcs:
        raise DataDirError("give at least one source data directory to combine")
    if any(Path(s).resolve() == dest.resolve() for s in srcs):
        raise DataDirError(f"{dest}: the destination is also a source; choose another destination")
    dirs = [DataDir.read(s) for s in srcs]
    notes: list[str] = []

    owner: dict[str, Path] = {}
    duplicates: dict[str, list[Path]] = {}
    for d in dirs:
        for utt in d.utt2spk:
            if utt in owner:
                duplicates.setdefault(utt, [owner[utt]]).append(d.path)
            owner.setdefault(utt, d.path)
    if duplicates:
        utt, paths = next(iter(duplicates.items()))
        raise DataDirError(
            f"utterance ids {few_ids(duplicates)} appear in more than one source (e.g. '{utt}' in "
            f"{' and '.join(map(str, paths))}); give each source's utterances a distinct prefix"
        )

    if any(d.segments is not None for d in dirs):
        for d in dirs:
            if d.segments is None:
                d.segments = {utt: Segment(utt, 0.0, -1.0) for utt in d.utt2spk}
                notes.append(f"{d.path}: has no segments; used whole recordings ('<utt> <utt> 0 -1')")
    combined = DataDir(
        path=dest,
        wav_scp=_merge(dirs, "wav_scp", "wav.scp"),
        utt2spk=_merge(dirs, "utt2spk", "utt2spk"),
        segments=None if dirs[0].segments is None else _merge(dirs, "segments", "segments"),
    )

    def described_by(d: DataDir) -> tuple[bytes | None, ...]:  # what each feature config says, if present
        return tuple((d.path / n).read_bytes() if (d.path / n).exists() else None for n in FEATURE_DESCRIPTIONS)

    configs = {described_by(d) for d in dirs}
    same_features = len(configs) == 1
    for spec in TABLES:
        if spec.attr in _ALWAYS:
            continue
        lacking = [str(d.path) for d in dirs if getattr(d, spec.attr) is None]
        if lacking:
            notes.append(f"dropped {spec.name}: missing in {', '.join(lacking)}")
            continue
        if spec.attr in _FEATURE_TABLES and not same_features:
            notes.append(f"dropped {spec.name}: the sources' feature configs ({' / '.join(FEATURE_DESCRIPTIONS)}) "
                         f"differ; recompute features on {dest}")
            continue
        conflict = _conflict(dirs, spec.attr, spec.name) if spec.attr == "cmvn_scp" else None
        if conflict:
            # A speaker in several sources has stats from each; none is right for the union.
            notes.append(f"dropped cmvn.scp: speaker {conflict}; recompute: speech compute-cmvn-stats {dest} --per-speaker")
            continue
        setattr(combined, spec.attr, _merge(dirs, spec.attr, spec.name))
    combined.write()
    config = configs.pop() if same_features else (None,) * len(FEATURE_DESCRIPTIONS)
    for name, text in zip(FEATURE_DESCRIPTIONS, config):
        if combined.feats_scp is not None and text is not None:
            with atomic_write(dest / name, "wb") as f:
                f.write(text)
        else:
            (dest / name).unlink(missing_ok=True)
    return notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech combine-data-dirs",
        description="Combine data directories into DEST (Kaldi combine_data.sh); optional files are "
        "kept only if every source has them.",
    )
    parser.add_argument("dest", help="destination data directory (created)")
    parser.add_argument("srcs", nargs="+", help="source data directories")
    args = parser.parse_args(argv)
    notes = combine_data_dirs(args.dest, args.srcs)
    for note in notes:
        print(note)
    d = DataDir.read(args.dest)
    print(f"{args.dest}: {len(d.utt2spk)} utterances, {len(d.spk2utt())} speakers from {len(args.srcs)} directories")
    return 0
