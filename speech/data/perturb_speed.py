"""Speed perturbation of a data directory (Kaldi's ``perturb_data_dir_speed_3way.sh``).

``speech perturb-speed data/train data/train_sp --factors 0.9 1.0 1.1`` writes one data
directory holding a copy of every utterance per factor. A copy at factor f plays the
audio f times as fast with sox's ``speed`` effect (tempo and pitch together, like a tape
run faster: a new vocal-tract length and speaking rate, which is why it helps more than
tempo alone). Nothing is computed now: wav.scp gets a pipe per recording,
``sox <audio> -t wav - speed f |`` (or the existing pipe extended with it), that runs when
features are extracted.

Ids: utterances, speakers and recordings at f != 1 get the prefix ``sp<f>-`` (Kaldi's
convention, so a perturbed speaker is a speaker of its own for CMVN and the speaker-prefix
rule still holds); factor 1 keeps the original ids. Durations and segment times are divided
by f. Features (feats.scp, CMVN) are not carried over: compute them on the result.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
from pathlib import Path

from speech.audio import is_pipe
from speech.data.datadir import FEATURE_DESCRIPTIONS, GLOBAL_CMVN, DataDir, Segment
from speech.errors import DataDirError, SpeechError

DEFAULT_FACTORS = (0.9, 1.0, 1.1)


def prefix(factor: float) -> str:
    """``sp0.9-`` for 0.9; empty for 1 (the original ids)."""
    return "" if factor == 1.0 else f"sp{factor:g}-"


def speed_pipe(wav_scp_value: str, factor: float) -> str:
    """A wav.scp value whose audio is that of ``wav_scp_value`` played ``factor`` times as fast."""
    if is_pipe(wav_scp_value):
        return f"{wav_scp_value.rstrip()} sox -t wav - -t wav - speed {factor:g} |"
    return f"sox {shlex.quote(wav_scp_value)} -t wav - speed {factor:g} |"


def perturb(d: DataDir, factor: float, dest: Path) -> DataDir:
    """The copy of ``d`` at one speed ``factor`` (no feature tables)."""
    p = prefix(factor)
    if factor == 1.0:
        wav_scp = dict(d.wav_scp)
    else:
        wav_scp = {p + rec: speed_pipe(value, factor) for rec, value in d.wav_scp.items()}
    segments = None
    if d.segments is not None:
        segments = {
            p + utt: Segment(p + seg.recording, seg.start / factor, seg.end / factor if seg.end != -1 else -1.0)
            for utt, seg in d.segments.items()
        }
    return DataDir(
        path=dest,
        wav_scp=wav_scp,
        utt2spk={p + utt: p + spk for utt, spk in d.utt2spk.items()},
        text=None if d.text is None else {p + u: t for u, t in d.text.items()},
        segments=segments,
        utt2dur=None if d.utt2dur is None else {p + u: dur / factor for u, dur in d.utt2dur.items()},
    )


def perturb_speed(src: str | Path, dest: str | Path, factors: tuple[float, ...] = DEFAULT_FACTORS) -> DataDir:
    """Write the union of ``src`` at every speed factor to ``dest``; returns it."""
    src, dest = Path(src), Path(dest)
    if not factors or any(f <= 0 for f in factors) or len(set(factors)) != len(factors):
        raise SpeechError(f"speed factors must be distinct and positive (got {' '.join(map(str, factors))})")
    if src.resolve() == dest.resolve():
        raise DataDirError(f"{dest}: the destination is the source; choose another directory")
    if any(f != 1.0 for f in factors) and shutil.which("sox") is None:
        raise SpeechError("sox is not installed (speed perturbation runs it when features are extracted); "
                          "install it with tools/install_system_packages.sh")
    d = DataDir.read(src)
    parts = [perturb(d, f, dest) for f in factors]
    combined = DataDir(path=dest, wav_scp={}, utt2spk={},
                       text=None if d.text is None else {}, segments=None if d.segments is None else {},
                       utt2dur=None if d.utt2dur is None else {})
    for part in parts:
        for attr in ("wav_scp", "utt2spk", "text", "segments", "utt2dur"):
            table = getattr(combined, attr)
            if table is not None:
                table.update(getattr(part, attr))
    # a directory re-made from scratch: leftovers (features of the source ids) must go
    for stale in ("feats.scp", "utt2num_frames", "cmvn.scp", *FEATURE_DESCRIPTIONS, GLOBAL_CMVN):
        (dest / stale).unlink(missing_ok=True)
    combined.write()
    return combined


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech perturb-speed",
        description="Copy a data directory at several speeds (sox 'speed': tempo and pitch together), "
        "as Kaldi's perturb_data_dir_speed_3way.sh; ids at factor f != 1 get the prefix sp<f>-.",
    )
    parser.add_argument("src", help="source data directory")
    parser.add_argument("dest", help="destination data directory")
    parser.add_argument("--factors", type=float, nargs="+", default=list(DEFAULT_FACTORS),
                        help="speed factors (default 0.9 1.0 1.1)")
    args = parser.parse_args(argv)
    d = perturb_speed(args.src, args.dest, tuple(args.factors))
    print(f"{args.dest}: {len(d.utt2spk)} utterances at speeds {' '.join(f'{f:g}' for f in args.factors)}; "
          f"compute features on it next")
    return 0
