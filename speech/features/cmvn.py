"""Cepstral mean and variance normalisation (CMVN): statistics, application, and the stage.

Statistics use Kaldi's layout, a float64 matrix [2, D+1]: row 0 holds the per-dimension sums
of the features and the frame count in its last column; row 1 holds the sums of squares
(last column 0). Stats of several utterances or speakers therefore add up element-wise.

Stage: ``speech compute-cmvn-stats DATA_DIR [--per-speaker] [--cmvn-dir DIR] [--force]``
writes DATA_DIR/cmvn_global.ark (one matrix over every utterance) and, with
``--per-speaker``, ``<cmvn-dir>/cmvn_<data name>.ark`` with DATA_DIR/cmvn.scp keyed by speaker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterable

import kaldiio
import numpy as np

from speech.errors import DataDirError, SpeechError
from speech.features.storage import ark_paths, ark_writer
from speech.fileio import atomic_write, read_key_value, write_key_value
from speech.stage import skip

# Kaldi floors variances at this value before dividing (ApplyCmvn).
_VAR_FLOOR = 1.0e-20


def accumulate_stats(feats_iter: Iterable[np.ndarray]) -> np.ndarray:
    """Sum CMVN statistics over feature matrices [T, D] -> float64 [2, D+1] (Kaldi layout).

    Raises ValueError when the matrices differ in dimension or none is given.
    """
    stats: np.ndarray | None = None
    for feats in feats_iter:
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"expected features of shape [T, D], got {feats.shape}")
        if stats is None:
            stats = np.zeros((2, feats.shape[1] + 1), dtype=np.float64)
        elif feats.shape[1] != stats.shape[1] - 1:
            raise ValueError(f"feature dimension {feats.shape[1]} differs from earlier ones ({stats.shape[1] - 1})")
        stats[0, :-1] += feats.sum(axis=0)
        stats[1, :-1] += np.square(feats).sum(axis=0)
        stats[0, -1] += feats.shape[0]
    if stats is None:
        raise ValueError("no features to accumulate CMVN statistics from")
    return stats


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = True) -> np.ndarray:
    """Normalise features [T, D] with stats [2, D+1] -> float32 [T, D].

    Subtracts the mean; with ``norm_vars`` also divides by the standard deviation (variance
    floored at 1e-20, as Kaldi does).
    """
    stats = np.asarray(stats, dtype=np.float64)
    feats = np.asarray(feats)
    if stats.shape != (2, feats.shape[-1] + 1):
        raise ValueError(f"CMVN stats of shape {stats.shape} do not fit features of dimension {feats.shape[-1]}")
    count = stats[0, -1]
    if count < 1.0:
        raise ValueError(f"CMVN stats have a frame count of {count}; cannot normalise")
    mean = stats[0, :-1] / count
    out = feats.astype(np.float64) - mean
    if norm_vars:
        var = np.maximum(stats[1, :-1] / count - np.square(mean), _VAR_FLOOR)
        out /= np.sqrt(var)
    return out.astype(np.float32)


def write_stats(path: str | os.PathLike, stats: np.ndarray) -> None:
    """Write stats [2, D+1] as a binary Kaldi double matrix (what compute-cmvn-stats writes
    to a file name), atomically."""
    with atomic_write(path, "wb") as f:
        kaldiio.save_mat(f, np.asarray(stats, dtype=np.float64))


def read_stats(path: str | os.PathLike) -> np.ndarray:
    """Read stats -> float64 [2, D+1] from a matrix file (``write_stats``) or a cmvn.scp
    value (``<ark>:<offset>``). Raises SpeechError naming the file when it is not stats."""
    try:
        stats = np.asarray(kaldiio.load_mat(str(path)), dtype=np.float64)
    except (OSError, ValueError, RuntimeError, UnicodeDecodeError) as e:  # kaldiio's parse errors vary
        raise SpeechError(f"{path}: cannot read CMVN stats ({e}); recompute with speech compute-cmvn-stats") from None
    if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
        raise SpeechError(f"{path}: a matrix of shape {stats.shape} is not CMVN stats [2, D+1]")
    return stats


def compute_cmvn_stats(
    data_dir: str | os.PathLike, per_speaker: bool = False, cmvn_dir: str | os.PathLike | None = None, force: bool = False
) -> bool:
    """Compute the stage's outputs (see the module docstring); returns False when skipped."""
    # Imported here so that users of apply_cmvn/read_stats (training, transcription) do not
    # load the audio stack that data directories bring in.
    from speech.data.datadir import GLOBAL_CMVN, DataDir

    data = Path(data_dir)
    d = DataDir.read(data)
    feats_scp_path = data / "feats.scp"
    if d.feats_scp is None:
        raise DataDirError(f"{feats_scp_path}: not found; compute features first (speech compute-fbank {data})")
    missing = sorted(set(d.utt2spk) - set(d.feats_scp))
    extra = sorted(set(d.feats_scp) - set(d.utt2spk))
    if missing or extra:
        example = (missing or extra)[0]
        raise DataDirError(
            f"{feats_scp_path}: {len(missing)} utterances of utt2spk have no features and {len(extra)} features "
            f"have no utt2spk line (e.g. '{example}'); run speech fix-data-dir {data} or recompute features"
        )

    global_path = data / GLOBAL_CMVN
    spk_ark = Path(cmvn_dir if cmvn_dir is not None else data / "data") / f"cmvn_{data.resolve().name}.ark"
    outputs = [global_path] + ([spk_ark, data / "cmvn.scp"] if per_speaker else [])

    def covers_speakers() -> bool:
        scp = read_key_value(data / "cmvn.scp")
        return set(scp) == set(d.utt2spk.values()) and all(Path(p).is_file() for p in ark_paths(scp))

    if skip("compute-cmvn-stats", f"{data}: CMVN stats are newer than feats.scp", outputs,
            [feats_scp_path, data / "utt2spk"], covers_speakers if per_speaker else None, force):
        return False

    spk_stats: dict[str, np.ndarray] = {}
    num_frames = 0
    try:
        for utt, feats in kaldiio.load_scp_sequential(str(feats_scp_path)):
            utt_stats = accumulate_stats([feats])
            spk = d.utt2spk[utt]
            spk_stats[spk] = utt_stats if spk not in spk_stats else spk_stats[spk] + utt_stats
            num_frames += feats.shape[0]
    except (OSError, ValueError, RuntimeError) as e:
        raise DataDirError(
            f"{feats_scp_path}: cannot read the features ({e}); recompute them with speech compute-fbank --force"
        ) from None
    if num_frames == 0:
        raise DataDirError(f"{feats_scp_path}: the features have no frames; check the audio and recompute them")
    total = sum(spk_stats.values())

    if per_speaker:
        with ark_writer(spk_ark) as ark:
            for spk in sorted(spk_stats):
                ark.write(spk, spk_stats[spk])
        write_key_value(data / "cmvn.scp", ark.entries)
    write_stats(global_path, total)
    dim = total.shape[1] - 1
    print(f"compute-cmvn-stats: {data}: {len(d.feats_scp)} utterances, {num_frames} frames of dimension {dim} "
          f"-> {global_path}" + (f"; {len(spk_stats)} speakers -> {data / 'cmvn.scp'} ({spk_ark})" if per_speaker else ""))
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech compute-cmvn-stats",
        description="CMVN statistics of DATA_DIR/feats.scp: always global (DATA_DIR/cmvn_global.ark), "
        "and per speaker (DATA_DIR/cmvn.scp) with --per-speaker. Skipped when up to date.",
    )
    parser.add_argument("data_dir", help="data directory with feats.scp and utt2spk")
    parser.add_argument("--per-speaker", action="store_true", help="also write per-speaker stats and cmvn.scp")
    parser.add_argument("--cmvn-dir", default=None, help="where the per-speaker ark goes (default DATA_DIR/data)")
    parser.add_argument("--force", action="store_true", help="recompute even when the stats are up to date")
    args = parser.parse_args(argv)
    compute_cmvn_stats(args.data_dir, per_speaker=args.per_speaker, cmvn_dir=args.cmvn_dir, force=args.force)
    return 0
