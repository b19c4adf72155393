"""Kaldi data directories: one table file per kind of information, keyed by id.

A data directory holds ``wav.scp`` (recording -> path or ``cmd |`` pipe), ``utt2spk``
(utterance -> speaker), ``spk2utt`` (derived from utt2spk), and optionally ``text``,
``segments`` (utterance -> recording, start, end), ``utt2dur``, ``feats.scp``,
``utt2num_frames`` and ``cmvn.scp`` (speaker -> stats). Without ``segments`` every
recording is one utterance and wav.scp is keyed by utterance id. Files are sorted as
``LC_ALL=C sort`` would sort them, which Kaldi and ESPnet tools rely on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from speech.audio import load_wav_scp_entry
from speech.errors import DataDirError, SpeechError
from speech.fileio import atomic_write, kaldi_sort_key, read_key_value, write_key_value

# A segment may end up to this far past its recording: segment times are usually written
# with two decimals, so a last segment can overshoot the true end by rounding alone.
SEGMENT_END_TOLERANCE = 0.02


class Segment(NamedTuple):
    """Where an utterance lies in a recording, in seconds; ``end == -1`` means to its end."""

    recording: str
    start: float
    end: float


def format_seconds(x: float) -> str:
    """Shortest text that reads back as exactly ``x`` ("1.25", "3", "-1")."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def _parse_word(value: str) -> str:
    if len(value.split()) != 1:
        raise ValueError(f"expected one id without spaces after the key, got {value!r}")
    return value


def _parse_text(value: str) -> str:
    return value


def _parse_number(value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return x


def _parse_segment(value: str) -> Segment:
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"expected '<utterance> <recording> <start> <end>', got {len(fields) + 1} fields")
    start = _parse_number(fields[1], "start")
    end = _parse_number(fields[2], "end")
    if start < 0:
        raise ValueError(f"start {fields[1]} is negative")
    if end != -1 and end <= start:
        raise ValueError(f"end {fields[2]} is not after start {fields[1]} (use -1 for 'to the end of the recording')")
    return Segment(fields[0], start, end)


def _format_segment(seg: Segment) -> str:
    return f"{seg.recording} {format_seconds(seg.start)} {format_seconds(seg.end)}"


def _parse_duration(value: str) -> float:
    x = _parse_number(_parse_word(value), "duration")
    if x <= 0:
        raise ValueError(f"duration {value} is not positive")
    return x


def _parse_num_frames(value: str) -> int:
    word = _parse_word(value)
    if not word.isdigit() or int(word) == 0:
        raise ValueError(f"frame count {value!r} is not a positive whole number")
    return int(word)


@dataclass(frozen=True)
class TableSpec:
    """How one table file of a data directory is named, keyed, parsed and written."""

    name: str  # file name in the directory
    attr: str  # DataDir attribute holding it
    key: str  # what its keys are: "utterance", "recording" or "speaker"
    parse: Callable[[str], Any]  # value text -> value; ValueError says what is wrong
    format: Callable[[Any], str]
    fields: str  # the expected line, for messages
    required: bool = False
    allow_empty: bool = False


TABLES: tuple[TableSpec, ...] = (
    TableSpec("wav.scp", "wav_scp", "recording", _parse_text, str, "<recording> <path or command |>", required=True),
    TableSpec("utt2spk", "utt2spk", "utterance", _parse_word, str, "<utterance> <speaker>", required=True),
    TableSpec("text", "text", "utterance", _parse_text, str, "<utterance> <words...>", allow_empty=True),
    TableSpec("segments", "segments", "utterance", _parse_segment, _format_segment, "<utterance> <recording> <start> <end>"),
    TableSpec("utt2dur", "utt2dur", "utterance", _parse_duration, format_seconds, "<utterance> <seconds>"),
    TableSpec("feats.scp", "feats_scp", "utterance", _parse_text, str, "<utterance> <ark:offset>"),
    TableSpec("utt2num_frames", "utt2num_frames", "utterance", _parse_num_frames, str, "<utterance> <frames>"),
    TableSpec("cmvn.scp", "cmvn_scp", "speaker", _parse_text, str, "<speaker> <ark:offset>"),
)
TABLE_BY_NAME = {spec.name: spec for spec in TABLES}
# Derived from utt2spk on every write; read only by validation.
SPK2UTT = "spk2utt"
# Written by `speech compute-fbank` beside feats.scp: it describes the features, so it goes
# wherever feats.scp goes.
FEATURE_CONFIG = "feature_config.yaml"
# Written by `speech compute-mel` instead when feats.scp holds the synthesis half's log-mels
# (speech.tts.mel; model dirs that consume them keep a copy under the same name). A data dir
# of mels has no FEATURE_CONFIG, so ASR stages do not take its frames for their features.
MEL_CONFIG = "mel.yaml"
# A TTS corpus's ``<utt> <text as read>``: the words of ``text`` with the punctuation the
# speaker followed (pauses, questions), the TTS frontend's input.
SPOKEN = "spoken"
# What can describe feats.scp: at most one is present, the one of the stage that wrote it.
FEATURE_DESCRIPTIONS = (FEATURE_CONFIG, MEL_CONFIG)
# Written by `speech compute-cmvn-stats`: CMVN statistics over every utterance (Kaldi matrix).
GLOBAL_CMVN = "cmvn_global.ark"


def parse_value(spec: TableSpec, key: str, value: str) -> Any:
    """The value of one line of ``spec``'s table; ValueError says what is wrong with it."""
    if not value and not spec.allow_empty:
        raise ValueError(f"'{key}' has no value")
    return spec.parse(value)


class TableLine(NamedTuple):
    """One line of a table file as written: key and value text (blank lines have key "")."""

    lineno: int
    key: str
    value: str
    raw: str  # the line without its newline


def read_table_lines(path: str | os.PathLike) -> list[TableLine]:
    """Every line of a table file, without judging it (for validation and repair).

    Raises DataDirError when the file cannot be read or is not UTF-8.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            raw_lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise DataDirError(f"{path}: not UTF-8 text (bad byte at offset {e.start}); convert it with iconv") from None
    except OSError as e:
        raise DataDirError(f"{path}: cannot be read ({e.strerror})") from None
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()  # the newline ending the last line
    lines = []
    for lineno, raw in enumerate(raw_lines, 1):
        parts = raw.split(maxsplit=1)
        key = parts[0] if parts else ""
        lines.append(TableLine(lineno, key, parts[1].strip() if len(parts) > 1 else "", raw))
    return lines


@dataclass
class DataDir:
    """A Kaldi data directory in memory; optional tables are None when absent.

    ``utt2spk`` defines the utterances; ``wav_scp`` is keyed by recording (by utterance
    when there are no segments); ``cmvn_scp`` by speaker. spk2utt is derived, not stored.
    """

    path: Path
    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    feats_scp: dict[str, str] | None = None
    utt2num_frames: dict[str, int] | None = None
    cmvn_scp: dict[str, str] | None = None

    @classmethod
    def read(cls, path: str | os.PathLike) -> DataDir:
        """Read every table file present in ``path``.

        Raises DataDirError "<file>:<line>: ..." for a malformed line or duplicated key and
        for a missing wav.scp or utt2spk. Consistency between files is not checked here
        (see speech.data.validate).
        """
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: no such data directory")
        tables: dict[str, Any] = {}
        for spec in TABLES:
            file = path / spec.name
            if not file.exists():
                if spec.required:
                    raise DataDirError(
                        f"{file}: missing; a data directory needs wav.scp and utt2spk "
                        "(Kaldi format: one '<id> <value>' per line)"
                    )
                tables[spec.attr] = None
                continue
            tables[spec.attr] = _read_table(file, spec)
        return cls(path=path, **tables)

    def write(self, path: str | os.PathLike | None = None) -> None:
        """Write every present table (and spk2utt) to ``path`` (default: ``self.path``).

        Each file is written atomically and sorted as ``LC_ALL=C sort``. A table that is
        None here is removed from ``path`` if there, so the directory matches this object.
        """
        path = Path(self.path if path is None else path)
        path.mkdir(parents=True, exist_ok=True)
        for spec in TABLES:
            table = getattr(self, spec.attr)
            if table is None:
                (path / spec.name).unlink(missing_ok=True)
            else:
                write_key_value(path / spec.name, {k: spec.format(v) for k, v in table.items()})
        write_key_value(path / SPK2UTT, {spk: " ".join(utts) for spk, utts in self.spk2utt().items()})

    def utterances(self) -> list[str]:
        """Utterance ids (keys of utt2spk) in ``LC_ALL=C sort`` order."""
        return sorted(self.utt2spk, key=kaldi_sort_key)

    def spk2utt(self) -> dict[str, list[str]]:
        """Speaker -> its utterances, both in ``LC_ALL=C sort`` order."""
        spk2utt: dict[str, list[str]] = {}
        for utt in self.utterances():
            spk2utt.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: spk2utt[spk] for spk in sorted(spk2utt, key=kaldi_sort_key)}

    def segment(self, utt: str) -> Segment:
        """Where ``utt`` lies: its segment, or its whole recording when there are no segments."""
        if self.segments is None:
            return Segment(utt, 0.0, -1.0)
        try:
            return self.segments[utt]
        except KeyError:
            raise DataDirError(
                f"{self.path / 'segments'}: no line for utterance '{utt}'; "
                f"add it or run: speech fix-data-dir {self.path}"
            ) from None

    def subset(self, utts: Iterable[str], path: str | os.PathLike | None = None) -> DataDir:
        """A new DataDir holding only ``utts`` (which must be in utt2spk).

        Utterance tables are filtered to ``utts``; wav.scp to the recordings they use and
        cmvn.scp to their speakers. Nothing is written; ``path`` defaults to ``self.path``.
        """
        keep = set(utts)
        unknown = keep - self.utt2spk.keys()
        if unknown:
            raise DataDirError(
                f"{self.path / 'utt2spk'}: has no utterance {few_ids(unknown)}; "
                "select utterances that the data directory holds"
            )

        def only(table: dict | None, keys: set[str]) -> dict | None:
            return None if table is None else {k: v for k, v in table.items() if k in keys}

        if self.segments is None:
            recordings = keep
        else:
            recordings = {self.segments[u].recording for u in keep if u in self.segments}
        speakers = {self.utt2spk[u] for u in keep} | keep  # per-utterance CMVN is keyed by utterance
        return DataDir(
            path=Path(self.path if path is None else path),
            wav_scp=only(self.wav_scp, recordings),
            utt2spk=only(self.utt2spk, keep),
            text=only(self.text, keep),
            segments=only(self.segments, keep),
            utt2dur=only(self.utt2dur, keep),
            feats_scp=only(self.feats_scp, keep),
            utt2num_frames=only(self.utt2num_frames, keep),
            cmvn_scp=only(self.cmvn_scp, speakers),
        )


def copy_feature_config(src: str | os.PathLike, dest: str | os.PathLike, d: DataDir) -> None:
    """Copy ``src``'s feature config (each of FEATURE_DESCRIPTIONS it has) to ``dest`` when
    ``d`` (written there) has feats.scp.

    Otherwise remove a stale one from ``dest``: the config describes feats.scp, so it
    goes wherever feats.scp goes and nowhere else.
    """
    for name in FEATURE_DESCRIPTIONS:
        config, target = Path(src) / name, Path(dest) / name
        if d.feats_scp is not None and config.exists():
            with atomic_write(target, "wb") as f:
                f.write(config.read_bytes())
        else:
            target.unlink(missing_ok=True)


def _read_table(file: Path, spec: TableSpec) -> dict[str, Any]:
    """Strictly read one table: shared key/value reader, then the spec's value parser."""
    try:
        raw = read_key_value(file, allow_empty_value=spec.allow_empty)
    except DataDirError:
        raise
    except SpeechError as e:
        raise DataDirError(str(e)) from None
    table = {}
    # read_key_value rejects blank lines, so the i-th key is on line i + 1.
    for lineno, (key, value) in enumerate(raw.items(), 1):
        try:
            table[key] = spec.parse(value)
        except ValueError as e:
            raise DataDirError(f"{file}:{lineno}: {e}; expected '{spec.fields}'") from None
    return table


def few_ids(ids: Iterable[str], n: int = 3) -> str:
    """A few of many ids for a message, e.g. "'a', 'b', 'c' and 4 more" ("none" if empty)."""
    ids = sorted(ids, key=kaldi_sort_key)
    if not ids:
        return "none"
    shown = ", ".join(f"'{i}'" for i in ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")


def iter_utterance_audio(
    d: DataDir, sample_rate: int, utts: Iterable[str] | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (utterance id, float32 [num_samples] mono audio at ``sample_rate``).

    Each recording is read once, however many segments it holds: utterances that share a
    recording are yielded together, recordings in the order of their first utterance in
    ``utts`` (default: all, sorted). Raises DataDirError when a segment lies outside its
    recording and AudioError (naming the file) for unreadable audio.
    """
    utts = d.utterances() if utts is None else list(utts)
    by_recording: dict[str, list[str]] = {}
    for utt in utts:
        if utt not in d.utt2spk:
            raise DataDirError(f"{d.path / 'utt2spk'}: no utterance '{utt}'")
        by_recording.setdefault(d.segment(utt).recording, []).append(utt)
    for recording, members in by_recording.items():
        value = d.wav_scp.get(recording)
        if value is None:
            raise DataDirError(
                f"{d.path / 'wav.scp'}: no recording '{recording}' (used by utterance '{members[0]}'); "
                f"add it or run: speech fix-data-dir {d.path}"
            )
        audio = load_wav_scp_entry(value, sample_rate)
        if d.segments is None:
            yield members[0], audio
            continue
        for utt in members:
            yield utt, _cut(d, utt, audio, sample_rate)


def _cut(d: DataDir, utt: str, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Samples of ``utt``'s segment: float32 [M], a copy so the recording can be freed."""
    seg = d.segment(utt)
    length = len(audio) / sample_rate
    end = length if seg.end == -1 else seg.end
    if seg.start >= length or end > length + SEGMENT_END_TOLERANCE:
        raise DataDirError(
            f"{d.path / 'segments'}: utterance '{utt}' spans {format_seconds(seg.start)}-{format_seconds(end)} s "
            f"but recording '{seg.recording}' is {length:.3f} s long; fix the times or re-create the recording"
        )
    first = int(round(seg.start * sample_rate))
    last = min(len(audio), int(round(end * sample_rate)))
    if last <= first:
        raise DataDirError(
            f"{d.path / 'segments'}: utterance '{utt}' is shorter than one sample at {sample_rate} Hz; remove it"
        )
    return audio[first:last].copy()
