"""Check a Kaldi data directory and say, for each problem, where it is and how to fix it.

Every problem reads ``<file>:<line>: <what is wrong>; fix: <what to do>`` (a problem about
a whole file has no line). Problems that do not break later stages, such as an empty
transcript, start with ``warning:`` after the location and do not fail the stage.

The checks follow Kaldi's ``validate_data_dir.sh``: required files, ``LC_ALL=C`` sort order,
unique keys, field counts and numbers, speaker ids as prefixes of utterance ids, the same
utterances in every per-utterance file, spk2utt matching utt2spk, segments inside existing
recordings, and (``--check-audio``) audio that can be opened.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from speech.audio import audio_duration
from speech.data.datadir import (
    SEGMENT_END_TOLERANCE,
    SPK2UTT,
    TABLE_BY_NAME,
    DataDir,
    TABLES,
    Segment,
    TableLine,
    few_ids,
    format_seconds,
    parse_value,
    read_table_lines,
)
from speech.errors import AudioError, DataDirError
from speech.fileio import kaldi_sort_key

WARNING = "warning: "
# After this many problems of one kind in one file, the rest are counted, not listed: a
# directory with every utterance missing from text needs one example, not 100,000 lines.
MAX_PER_KIND = 20
_PER_UTTERANCE = ("text", "segments", "utt2dur", "feats.scp", "utt2num_frames")


def is_warning(problem: str) -> bool:
    """True for a problem that does not make the directory unusable."""
    return f": {WARNING}" in problem


class _Table:
    """One table file as read for checking: where each key first appears and its value."""

    def __init__(self, file: Path, lines: list[TableLine]):
        self.file = file
        self.lines = lines
        self.line_of: dict[str, int] = {}  # key -> line of its first appearance
        self.values: dict[str, object] = {}  # key -> parsed value, for lines that parse


class _Validator:
    def __init__(self, path: Path, max_per_kind: int | None):
        self.path = path
        self.max_per_kind = max_per_kind
        self.problems: list[str] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.overflow: dict[tuple[str, str], tuple[int, str]] = {}
        self.tables: dict[str, _Table] = {}

    def add(self, file: str, line: int | None, kind: str, what: str, fix: str, warning: bool = False) -> None:
        """Record a problem; ``kind`` groups problems for the per-kind limit."""
        where = str(self.path / file) + (f":{line}" if line is not None else "")
        key = (file, kind)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.max_per_kind is not None and self.counts[key] > self.max_per_kind:
            self.overflow[key] = (self.counts[key] - self.max_per_kind, fix)
            return
        self.problems.append(f"{where}: {WARNING if warning else ''}{what}; fix: {fix}")

    def finish(self) -> list[str]:
        for (file, kind), (more, fix) in self.overflow.items():
            self.problems.append(f"{self.path / file}: {more} more problems like the above ({kind}); fix: {fix}")
        return self.problems

    # -- reading -------------------------------------------------------------------------

    def read(self, name: str) -> _Table | None:
        """Read ``name`` if present, reporting line-level problems; None when absent."""
        file = self.path / name
        if not file.exists():
            return None
        try:
            lines = read_table_lines(file)
        except DataDirError as e:
            self.add(name, None, "unreadable", str(e).removeprefix(f"{file}: "), "rewrite it as UTF-8 text")
            return None
        table = _Table(file, lines)
        spec = TABLE_BY_NAME.get(name)
        fields = spec.fields if spec else "<speaker> <utterance...>"
        previous: TableLine | None = None
        unsorted_reported = crlf_reported = False
        for line in lines:
            if not line.key:
                self.add(name, line.lineno, "empty line", "empty line", "remove it")
                continue
            if line.raw.endswith("\r") and not crlf_reported:
                crlf_reported = True
                self.add(name, line.lineno, "line ending", "Windows line ending (carriage return)",
                         f"convert the file with: dos2unix {file}")
            if line.key in table.line_of:
                self.add(name, line.lineno, "duplicate key",
                         f"key '{line.key}' already appears on line {table.line_of[line.key]}",
                         f"keep one line per key (speech fix-data-dir {self.path} keeps the first)")
                continue
            if previous is not None and not unsorted_reported and kaldi_sort_key(line.key) < kaldi_sort_key(previous.key):
                unsorted_reported = True
                self.add(name, line.lineno, "sort order",
                         f"not sorted: '{line.key}' comes after '{previous.key}' (line {previous.lineno})",
                         f"sort it with 'LC_ALL=C sort' or run: speech fix-data-dir {self.path}")
            previous = line
            table.line_of[line.key] = line.lineno
            try:
                table.values[line.key] = self._parse(name, line)
            except ValueError as e:
                self.add(name, line.lineno, "malformed line", str(e), f"write lines as '{fields}'")
        self.tables[name] = table
        return table

    @staticmethod
    def _parse(name: str, line: TableLine) -> object:
        if name == SPK2UTT:
            if not line.value:
                raise ValueError(f"speaker '{line.key}' lists no utterances")
            return line.value.split()
        return parse_value(TABLE_BY_NAME[name], line.key, line.value)

    # -- checks --------------------------------------------------------------------------

    def run(self, check_audio: bool) -> list[str]:
        for name in (*(spec.name for spec in TABLES), SPK2UTT):
            self.read(name)
        for name in ("wav.scp", "utt2spk", SPK2UTT):
            if name not in self.tables and not (self.path / name).exists():
                self.add(name, None, "missing file", "missing (a data directory needs wav.scp, utt2spk and spk2utt)",
                         "create it" if name != SPK2UTT else f"generate it from utt2spk: speech fix-data-dir {self.path}")
        utt2spk = self.tables.get("utt2spk")
        if utt2spk is None:
            return self.finish()
        self.check_speakers(utt2spk)
        for name in _PER_UTTERANCE:
            if name in self.tables:
                self.check_same_utterances(utt2spk, self.tables[name], name)
        self.check_recordings(utt2spk)
        self.check_text()
        if check_audio:
            self.check_audio()
        return self.finish()

    def check_speakers(self, utt2spk: _Table) -> None:
        """Speaker ids prefix utterance ids; spk2utt and cmvn.scp agree with utt2spk."""
        spk2utt: dict[str, list[str]] = {}
        first_line: dict[str, int] = {}
        for utt, spk in utt2spk.values.items():
            spk2utt.setdefault(spk, []).append(utt)
            first_line.setdefault(spk, utt2spk.line_of[utt])
            if not utt.startswith(spk):
                self.add("utt2spk", utt2spk.line_of[utt], "speaker prefix",
                         f"utterance '{utt}' does not start with its speaker id '{spk}'",
                         f"rename the utterance to '{spk}-{utt}' (Kaldi needs utt2spk and spk2utt in the same order)")
        listed = self.tables.get(SPK2UTT)
        if listed is not None:
            for spk, utts in listed.values.items():
                line = listed.line_of[spk]
                expected = spk2utt.get(spk)
                if expected is None:
                    self.add(SPK2UTT, line, "spk2utt mismatch", f"speaker '{spk}' has no utterance in utt2spk",
                             f"regenerate spk2utt: speech fix-data-dir {self.path}")
                elif set(utts) != set(expected):
                    missing, extra = set(expected) - set(utts), set(utts) - set(expected)
                    differences = ([f"missing {few_ids(missing)}"] if missing else []) + (
                        [f"{few_ids(extra)} not of this speaker in utt2spk"] if extra else [])
                    self.add(SPK2UTT, line, "spk2utt mismatch",
                             f"speaker '{spk}' lists other utterances than utt2spk ({'; '.join(differences)})",
                             f"regenerate spk2utt: speech fix-data-dir {self.path}")
                elif utts != sorted(utts, key=kaldi_sort_key):
                    self.add(SPK2UTT, line, "spk2utt order", f"utterances of speaker '{spk}' are not sorted",
                             f"regenerate spk2utt: speech fix-data-dir {self.path}")
            for spk in spk2utt.keys() - listed.line_of.keys():
                self.add("utt2spk", first_line[spk], "spk2utt mismatch", f"speaker '{spk}' has no line in spk2utt",
                         f"regenerate spk2utt: speech fix-data-dir {self.path}")
        cmvn = self.tables.get("cmvn.scp")
        if cmvn is not None:
            known = set(spk2utt) | set(utt2spk.line_of)  # speakers, or utterances for per-utterance CMVN
            for key in cmvn.line_of.keys() - known:
                self.add("cmvn.scp", cmvn.line_of[key], "extra key", f"'{key}' is not a speaker in utt2spk",
                         f"recompute it: speech compute-cmvn-stats {self.path} --per-speaker")
            for spk in spk2utt.keys() - cmvn.line_of.keys():
                self.add("utt2spk", first_line[spk], "missing cmvn", f"speaker '{spk}' has no line in cmvn.scp",
                         f"recompute it: speech compute-cmvn-stats {self.path} --per-speaker")

    def check_same_utterances(self, utt2spk: _Table, table: _Table, name: str, note: str = "") -> None:
        """``table`` has a line for each utterance in utt2spk and no others."""
        for utt in sorted(utt2spk.line_of.keys() - table.line_of.keys(), key=kaldi_sort_key):
            self.add("utt2spk", utt2spk.line_of[utt], f"missing from {name}",
                     f"utterance '{utt}' has no line in {name}",
                     f"add it to {name}, or drop the utterance: speech fix-data-dir {self.path}")
        for key in sorted(table.line_of.keys() - utt2spk.line_of.keys(), key=kaldi_sort_key):
            self.add(name, table.line_of[key], "not in utt2spk", f"'{key}' is not an utterance in utt2spk{note}",
                     f"add it to utt2spk, or remove the line: speech fix-data-dir {self.path}")

    def check_recordings(self, utt2spk: _Table) -> None:
        """wav.scp covers the utterances (no segments) or the segments' recordings."""
        wav = self.tables.get("wav.scp")
        segments = self.tables.get("segments")
        if wav is None:
            return
        if segments is None:
            self.check_same_utterances(utt2spk, wav, "wav.scp",
                                       note=" (without a segments file, wav.scp is keyed by utterance id)")
            return
        used: set[str] = set()
        for utt, seg in segments.values.items():
            used.add(seg.recording)
            if seg.recording not in wav.line_of:
                self.add("segments", segments.line_of[utt], "unknown recording",
                         f"recording '{seg.recording}' of utterance '{utt}' is not in wav.scp",
                         f"add the recording to wav.scp, or drop the utterance: speech fix-data-dir {self.path}")
        for rec in sorted(wav.line_of.keys() - used, key=kaldi_sort_key):
            self.add("wav.scp", wav.line_of[rec], "unused recording", f"recording '{rec}' is used by no segment",
                     f"remove it: speech fix-data-dir {self.path} drops unused recordings")

    def check_text(self) -> None:
        text = self.tables.get("text")
        if text is None:
            return
        for utt, words in text.values.items():
            if not words:
                self.add("text", text.line_of[utt], "empty transcript", f"utterance '{utt}' has an empty transcript",
                         "write its words, or remove the utterance if it holds no speech", warning=True)

    def check_audio(self) -> None:
        """Every recording opens; every segment lies inside its recording."""
        wav = self.tables.get("wav.scp")
        if wav is None:
            return
        durations: dict[str, float] = {}
        for rec, value in wav.values.items():
            try:
                durations[rec] = audio_duration(value)
            except AudioError as e:
                self.add("wav.scp", wav.line_of[rec], "unreadable audio", f"recording '{rec}' cannot be read ({e})",
                         "repair or replace the audio, or remove the recording from the data directory")
        segments = self.tables.get("segments")
        if segments is None:
            return
        for utt, seg in segments.values.items():
            length = durations.get(seg.recording)
            if length is not None and _outside(seg, length):
                self.add("segments", segments.line_of[utt], "segment outside recording",
                         f"utterance '{utt}' spans {format_seconds(seg.start)}-{format_seconds(seg.end)} s "
                         f"but recording '{seg.recording}' is {length:.3f} s long",
                         "correct the segment times")


def _outside(seg: Segment, length: float) -> bool:
    return seg.start >= length or seg.end > length + SEGMENT_END_TOLERANCE


def validate_data_dir(
    path: str | os.PathLike, check_audio: bool = False, max_per_kind: int | None = MAX_PER_KIND
) -> list[str]:
    """Problems of the data directory at ``path``: ``"<file>:<line>: <what>; fix: <how>"``.

    An empty list means the directory is valid. Problems for which :func:`is_warning` is
    true do not make it invalid. ``check_audio`` opens every recording's header (runs
    pipes). At most ``max_per_kind`` problems of one kind per file are listed; the rest
    are summed up in one line (None lists all).
    """
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: not a directory; fix: give the path of a Kaldi data directory"]
    return _Validator(path, max_per_kind).run(check_audio)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech validate-data-dir",
        description="Check a Kaldi data directory; print each problem as file:line with the fix.",
    )
    parser.add_argument("data_dir", help="the data directory, e.g. data/train")
    parser.add_argument("--check-audio", action="store_true", help="also open every recording (runs wav.scp pipes)")
    parser.add_argument("--strict", action="store_true", help="fail on warnings (e.g. empty transcripts) too")
    args = parser.parse_args(argv)
    problems = validate_data_dir(args.data_dir, check_audio=args.check_audio)
    for problem in problems:
        print(problem)
    errors = [p for p in problems if not is_warning(p)]
    warnings = len(problems) - len(errors)
    if errors or (warnings and args.strict):
        print(f"{args.data_dir}: invalid ({len(errors)} problems, {warnings} warnings)")
        return 1
    d = DataDir.read(args.data_dir)
    print(f"{args.data_dir}: OK ({len(d.utt2spk)} utterances, {len(d.spk2utt())} speakers"
          + (f", {warnings} warnings)" if warnings else ")"))
    return 0
