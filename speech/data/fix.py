"""Repair a data directory in place, as Kaldi's ``fix_data_dir.sh`` does.

Keeps only the utterances that every per-utterance file has (and whose recording is in
wav.scp), drops recordings no kept utterance uses and CMVN entries of speakers that are
gone, removes duplicate, blank and malformed lines, re-sorts every file and regenerates
spk2utt. The original files are first copied to ``DIR/.backup/`` (``.backup.2``, ... when
an earlier run's backup is there: a second run must not replace the originals with files
the first one fixed). What was dropped, and why, is returned and printed; the stage then
validates the result and fails when it is still invalid (a problem that dropping lines
cannot fix, such as a speaker id that does not prefix its utterance ids).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech.data.datadir import (
    SPK2UTT,
    TABLES,
    DataDir,
    TableSpec,
    few_ids,
    parse_value,
    read_table_lines,
)
from speech.data.validate import is_warning, validate_data_dir
from speech.errors import DataDirError
from speech.fileio import atomic_write, kaldi_sort_key

BACKUP_DIR = ".backup"
_PER_UTTERANCE = ("text", "segments", "utt2dur", "feats.scp", "utt2num_frames")
# How many dropped ids the printed summary lists per kind; the report holds them all.
_SHOW = 10


@dataclass
class FixReport:
    """What :func:`fix_data_dir` changed. Dicts map a dropped id to the reason."""

    path: Path
    backup: Path | None = None  # where the originals went
    kept: int = 0
    dropped_utterances: dict[str, str] = field(default_factory=dict)
    dropped_recordings: dict[str, str] = field(default_factory=dict)
    dropped_cmvn: list[str] = field(default_factory=list)  # speakers no longer present
    line_fixes: list[str] = field(default_factory=list)  # "<file>:<line>: removed ..." and re-sorts

    def summary(self) -> str:
        total = self.kept + len(self.dropped_utterances)
        lines = [f"{self.path}: kept {self.kept} of {total} utterances; originals backed up in {self.backup}"]
        lines += self.line_fixes
        for what, dropped in (("utterance", self.dropped_utterances), ("recording", self.dropped_recordings)):
            ids = sorted(dropped, key=kaldi_sort_key)
            lines += [f"dropped {what} '{i}': {dropped[i]}" for i in ids[:_SHOW]]
            if len(ids) > _SHOW:
                lines.append(f"... and {len(ids) - _SHOW} more {what}s")
        if self.dropped_cmvn:
            lines.append(f"dropped cmvn.scp entries of speakers no longer present: {few_ids(self.dropped_cmvn)}")
        return "\n".join(lines)


def _read_lenient(path: Path, spec: TableSpec, report: FixReport) -> dict[str, Any]:
    """Read a table keeping the first valid line per key; note every line left out."""
    file = path / spec.name
    table: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    previous = b""
    sorted_ok = True
    lines = read_table_lines(file)
    # Splitting at whitespace drops the CRs of Windows line ends; the user should know.
    crlf = sum(line.raw.endswith("\r") for line in lines)
    if crlf:
        report.line_fixes.append(f"{file}: removed the CR of {crlf} lines with Windows (CR LF) line ends")
    for line in lines:
        if not line.key:
            report.line_fixes.append(f"{file}:{line.lineno}: removed empty line")
            continue
        if line.key in first_line:
            report.line_fixes.append(
                f"{file}:{line.lineno}: removed second line for '{line.key}' (kept line {first_line[line.key]})"
            )
            continue
        try:
            table[line.key] = parse_value(spec, line.key, line.value)
        except ValueError as e:
            report.line_fixes.append(f"{file}:{line.lineno}: removed malformed line ({e})")
            continue
        first_line[line.key] = line.lineno
        key = kaldi_sort_key(line.key)
        sorted_ok = sorted_ok and key >= previous
        previous = key
    if not sorted_ok:
        report.line_fixes.append(f"{file}: re-sorted (LC_ALL=C order)")
    return table


def _backup(path: Path) -> Path:
    """Copy every table file (and spk2utt) to the first of DIR/.backup, DIR/.backup.2, ...
    that does not exist yet; return it."""
    backup, n = path / BACKUP_DIR, 1
    while backup.exists():
        n += 1
        backup = path / f"{BACKUP_DIR}.{n}"
    for name in (*(spec.name for spec in TABLES), SPK2UTT):
        file = path / name
        if file.exists():
            with atomic_write(backup / name, "wb") as out:
                out.write(file.read_bytes())
    return backup


def fix_data_dir(path: str | os.PathLike) -> FixReport:
    """Repair the data directory at ``path`` in place; return what was dropped and why.

    Raises DataDirError (changing nothing) when wav.scp or utt2spk is missing or when no
    utterance would be left.
    """
    path = Path(path)
    report = FixReport(path)
    for spec in TABLES:
        if spec.required and not (path / spec.name).is_file():
            raise DataDirError(f"{path / spec.name}: missing; fix-data-dir needs wav.scp and utt2spk to start from")
    tables = {spec.attr: _read_lenient(path, spec, report) if (path / spec.name).exists() else None for spec in TABLES}
    d = DataDir(path=path, **tables)

    reasons: dict[str, list[str]] = {}  # utterance in utt2spk -> why it goes
    orphans: dict[str, list[str]] = {}  # id not in utt2spk -> the files that have it
    for spec in TABLES:
        table = getattr(d, spec.attr)
        if spec.name not in _PER_UTTERANCE or table is None:
            continue
        for utt in d.utt2spk.keys() - table.keys():
            reasons.setdefault(utt, []).append(f"no line in {spec.name}")
        for utt in table.keys() - d.utt2spk.keys():
            orphans.setdefault(utt, []).append(spec.name)
    for utt in d.utt2spk:
        if d.segments is not None and utt not in d.segments:
            continue  # already dropped for having no segment
        rec = d.segment(utt).recording
        if rec not in d.wav_scp:
            reasons.setdefault(utt, []).append(f"recording '{rec}' not in wav.scp")
    report.dropped_utterances.update((utt, "; ".join(why)) for utt, why in reasons.items())
    report.dropped_utterances.update((utt, f"not in utt2spk (only in {', '.join(names)})") for utt, names in orphans.items())
    keep = [utt for utt in d.utt2spk if utt not in reasons]
    report.kept = len(keep)
    if not keep:
        raise DataDirError(
            f"{path}: fixing would drop every utterance (e.g. {few_ids(reasons)}: "
            f"{next(iter(reasons.values()))[0] if reasons else 'utt2spk is empty'}); nothing was changed"
        )

    fixed = d.subset(keep)
    for rec in d.wav_scp.keys() - fixed.wav_scp.keys():
        if rec in reasons:
            continue  # keyed by a dropped utterance, which already says why
        if d.segments is None:
            report.dropped_recordings[rec] = "not an utterance in utt2spk (without segments, wav.scp is keyed by utterance)"
        else:
            report.dropped_recordings[rec] = "used by no kept utterance"
    if d.cmvn_scp is not None:
        report.dropped_cmvn = sorted(d.cmvn_scp.keys() - fixed.cmvn_scp.keys(), key=kaldi_sort_key)
    report.backup = _backup(path)
    fixed.write(path)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech fix-data-dir",
        description="Keep only utterances present in every file, re-sort, regenerate spk2utt "
        "(originals go to DIR/.backup/, or .backup.N when an earlier backup is there); fail if still invalid.",
    )
    parser.add_argument("data_dir", help="the data directory to repair in place, e.g. data/train")
    args = parser.parse_args(argv)
    print(fix_data_dir(args.data_dir).summary())
    # Dropping lines cannot fix everything (a speaker id that does not prefix its utterances):
    # a directory left invalid must not pass for fixed.
    errors = [p for p in validate_data_dir(args.data_dir) if not is_warning(p)]
    if errors:
        more = f" (and {len(errors) - 1} more problems: speech validate-data-dir {args.data_dir})"
        raise DataDirError(errors[0] + (more if len(errors) > 1 else ""))
    return 0
