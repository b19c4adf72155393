"""Write ``utt2dur`` (utterance -> seconds), as Kaldi's ``get_utt2dur.sh`` does.

Durations come from segment times where a segment has an end, otherwise from the audio
header of the recording (each recording is opened once; pipes are run). An existing
utt2dur is kept when it covers exactly the utterances and is newer than wav.scp and
segments, so re-running the stage is cheap.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from speech.audio import audio_duration
from speech.data.datadir import DataDir, format_seconds
from speech.errors import AudioError, DataDirError
from speech.fileio import write_key_value
from speech.stage import skip

# Durations are written to the microsecond: segment arithmetic like 3.2 - 1.1 would
# otherwise print as 2.1000000000000005.
_DECIMALS = 6


def get_utt2dur(path: str | os.PathLike, force: bool = False) -> dict[str, float]:
    """Write ``path/utt2dur`` and return it (utterance -> seconds).

    Raises DataDirError for an utterance whose recording is missing from wav.scp or whose
    segment starts after its recording ends, and AudioError for unreadable audio.
    """
    d = DataDir.read(path)
    if skip("get-utt2dur", f"{d.path / 'utt2dur'} covers every utterance, newer than wav.scp/segments",
            [d.path / "utt2dur"], [d.path / "wav.scp", d.path / "segments"],
            lambda: d.utt2dur.keys() == d.utt2spk.keys(), force):
        return dict(d.utt2dur)
    lengths: dict[str, float] = {}

    def length_of(recording: str, utt: str) -> float:
        if recording not in lengths:
            if recording not in d.wav_scp:
                raise DataDirError(
                    f"{d.path / 'wav.scp'}: no recording '{recording}' (used by utterance '{utt}'); "
                    f"add it or run: speech fix-data-dir {d.path}"
                )
            try:
                lengths[recording] = audio_duration(d.wav_scp[recording])
            except AudioError as e:
                raise AudioError(f"{d.path / 'wav.scp'}: recording '{recording}': {e}") from None
        return lengths[recording]

    utt2dur: dict[str, float] = {}
    for utt in d.utterances():
        seg = d.segment(utt)
        end = length_of(seg.recording, utt) if seg.end == -1 else seg.end
        if end <= seg.start:
            raise DataDirError(
                f"{d.path / 'segments'}: utterance '{utt}' starts at {format_seconds(seg.start)} s, after the end "
                f"of recording '{seg.recording}' ({format_seconds(end)} s); correct the segment"
            )
        utt2dur[utt] = round(end - seg.start, _DECIMALS)
    write_key_value(d.path / "utt2dur", {u: format_seconds(x) for u, x in utt2dur.items()})
    return utt2dur


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech get-utt2dur",
        description="Write DIR/utt2dur from segments or audio headers (Kaldi get_utt2dur.sh).",
    )
    parser.add_argument("data_dir", help="the data directory, e.g. data/train")
    parser.add_argument("--force", action="store_true", help="recompute even if utt2dur is up to date")
    args = parser.parse_args(argv)
    utt2dur = get_utt2dur(args.data_dir, force=args.force)
    total = sum(utt2dur.values())
    print(f"{Path(args.data_dir) / 'utt2dur'}: {len(utt2dur)} utterances, {total / 3600:.2f} hours")
    return 0
