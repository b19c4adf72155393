"""Stages ``speech compute-fbank`` / ``speech compute-mfcc``: features of a data dir in N jobs.

Kaldi's make_fbank.sh / make_mfcc.sh, in Python::

    speech compute-fbank DATA_DIR [--log-dir DIR] [--feat-dir DIR] [--nj N] [--cmd 'local'|'slurm --mem 4G ...']
                         [--config conf/features/fbank.yaml] [--force] [key=value ...]

The data dir is split into N parts (by speaker when there are at least N speakers), job J
writes ``<feat-dir>/raw_<type>_<data name>.J.{ark,scp}`` (uncompressed float32 matrices
[frames, dim]) and logs to ``<log-dir>/make_<type>.J.log``; the stage then writes
DATA_DIR/feats.scp, DATA_DIR/utt2num_frames and DATA_DIR/feature_config.yaml (the resolved
FeatureConfig), the last one only when all else is in place. A re-run skips when feats.scp
covers every utterance with the same config, unless ``--force``.

Each job runs this module as ``python -m speech.features.extract --job J ...``; nothing it
imports loads torch, so a job starts in a fraction of a second.

The machinery serves any kind of frame features (:class:`FeatureKind`): ``speech
compute-mel`` (speech.tts.compute_mel) runs it for the synthesis half's log-mels, whose
config goes to DATA_DIR/mel.yaml instead. Whichever stage writes feats.scp removes the
other kinds' config files (speech.data.datadir.FEATURE_DESCRIPTIONS), so a data dir never
claims features it does not hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from speech.config import load_config, save_config
from speech.data.datadir import FEATURE_CONFIG, FEATURE_DESCRIPTIONS, DataDir, iter_utterance_audio
from speech.data.split import split_data_dir
from speech.errors import DataDirError, SpeechError
from speech.features.extractor import FeatureConfig, make_extractor
from speech.features.storage import ark_paths, ark_writer
from speech.fileio import read_key_value, write_key_value
from speech.jobs.runner import check_nj, parse_cmd, python_module_argv, run_jobs
from speech.stage import skip

__all__ = ["FeatureConfig", "FeatureKind", "compute_features", "job_main", "main_fbank", "main_mfcc",
           "make_extractor", "stage_parser"]


@dataclass(frozen=True)
class FeatureKind:
    """One kind of frame features that :func:`compute_features` writes: how its config is
    read, written and checked, what extracts the frames, and which module runs its jobs.

    ``name`` names the stage (``compute-<name>``), arks (``raw_<name>_<data>.J.ark``) and logs
    (``make_<name>.J.log``). ``job_module``'s ``__main__`` calls :func:`job_main` with this
    kind, so that each kind's jobs import only what it needs (fbank jobs: no torch).
    """

    name: str
    config_file: str  # the config's name in the data dir, beside feats.scp
    job_module: str
    load_config: Callable[[Path], Any]  # raises SpeechError for a bad file
    save_config: Callable[[Any, Path], None]
    check: Callable[[Any], int]  # SpeechError for options the extractor rejects; else the feature dim
    make_extractor: Callable[[Any], Callable[[np.ndarray], np.ndarray]]  # samples [N] -> float32 [T, dim]
    frame_shift_seconds: Callable[[Any], float]
    too_short: Callable[[Any, float], str]  # why audio of that many seconds gave no frame, and the fix


def _kaldi_kind(name: str) -> FeatureKind:
    return FeatureKind(
        name=name, config_file=FEATURE_CONFIG, job_module="speech.features.extract",
        load_config=lambda path: load_config(FeatureConfig, path), save_config=save_config,
        check=lambda cfg: make_extractor(cfg).dim, make_extractor=make_extractor,
        frame_shift_seconds=lambda cfg: cfg.frame_shift_ms / 1000,
        too_short=lambda cfg, seconds: (f"{seconds:.3f} s is shorter than one {cfg.frame_length_ms:g} ms frame; remove "
                                        "the utterance (speech subset-data-dir) or set snip_edges=false"),
    )


KALDI_KINDS = {name: _kaldi_kind(name) for name in ("fbank", "mfcc")}


def _same_features(data: Path, utts: list[str], cfg: Any, kind: FeatureKind) -> bool:
    """feats.scp and utt2num_frames cover exactly ``utts``, their arks exist, config equal."""
    if kind.load_config(data / kind.config_file) != cfg:
        return False
    scp = read_key_value(data / "feats.scp")
    wanted = set(utts)
    return set(scp) == wanted and set(read_key_value(data / "utt2num_frames")) == wanted and all(
        Path(p).is_file() for p in ark_paths(scp)
    )


def compute_features(
    data_dir: str | Path,
    cfg: Any,
    nj: int = 4,
    cmd: str = "local",
    log_dir: str | Path | None = None,
    feat_dir: str | Path | None = None,
    force: bool = False,
    kind: FeatureKind | None = None,
) -> bool:
    """Run the stage (see the module docstring) with a resolved ``cfg`` of ``kind`` (default:
    the Kaldi feature of a FeatureConfig's ``type``); False when skipped."""
    # an unknown type is fbank's for now: its check below names the known types
    kind = kind if kind is not None else KALDI_KINDS.get(cfg.type, KALDI_KINDS["fbank"])
    stage = f"compute-{kind.name}"
    # Every option is checked before an output is touched: a typo must not cost the
    # features of an earlier run.
    check_nj(nj)
    dim = kind.check(cfg)
    job_spec = parse_cmd(cmd)
    data = Path(data_dir)
    d = DataDir.read(data)
    utts = d.utterances()
    if not utts:
        raise DataDirError(f"{data / 'utt2spk'}: no utterances; nothing to compute features for")
    # No input times: fix-data-dir rewrites the wav.scp of a dir whose features still fit
    # it, so only the utterances and the config say whether they do.
    outputs = [data / "feats.scp", data / "utt2num_frames", data / kind.config_file]
    if skip(stage, f"{data}: feats.scp has {kind.name} features for all {len(utts)} utterances with the same config",
            outputs, check=lambda: _same_features(data, utts, cfg, kind), force=force):
        return False

    name = data.resolve().name
    log_dir = Path(log_dir) if log_dir is not None else data / "log"
    feat_dir = (Path(feat_dir) if feat_dir is not None else data / "data").absolute()
    log_dir.mkdir(parents=True, exist_ok=True)
    feat_dir.mkdir(parents=True, exist_ok=True)
    # Until the new features are complete the data dir must not look finished: a killed
    # run then leaves a dir that the next run redoes. Every kind's config goes, since none
    # describes the feats.scp to come but this kind's, written last.
    for stale in (*FEATURE_DESCRIPTIONS, "feats.scp", "utt2num_frames"):
        if (data / stale).exists():
            print(f"{stage}: removing old {data / stale}")
            (data / stale).unlink()
    for tmp in feat_dir.glob(f".raw_{kind.name}_{name}.*.tmp"):  # left by killed jobs
        tmp.unlink()

    if nj > len(utts):
        print(f"{stage}: only {len(utts)} utterances; using --nj {len(utts)} instead of {nj}")
        nj = len(utts)
    by_speaker = len(set(d.utt2spk.values())) >= nj
    splits = split_data_dir(data, nj, by_speaker=by_speaker)
    job_config = log_dir / f"make_{kind.name}.config.yaml"
    kind.save_config(cfg, job_config)

    def ark(j: int) -> Path:
        return feat_dir / f"raw_{kind.name}_{name}.{j}.ark"

    def job_argv(j: int) -> list[str]:
        return python_module_argv(
            kind.job_module, "--job", str(j), "--kind", kind.name, "--config", str(job_config),
            "--data", str(splits[j - 1]), "--ark", str(ark(j)), "--utt2num-frames", str(log_dir / f"utt2num_frames.{j}"),
        )

    print(f"{stage}: {data}: {len(utts)} utterances in {nj} jobs (split by {'speaker' if by_speaker else 'utterance'}), "
          f"logs {log_dir}/make_{kind.name}.*.log")
    start = time.time()
    run_jobs(job_argv, nj, log_dir, f"make_{kind.name}", job_spec)

    feats_scp: dict[str, str] = {}
    num_frames: dict[str, str] = {}
    for j in range(1, nj + 1):
        feats_scp.update(read_key_value(ark(j).with_suffix(".scp")))
        num_frames.update(read_key_value(log_dir / f"utt2num_frames.{j}"))
    missing = set(utts) - set(feats_scp)
    if missing:
        raise SpeechError(f"{stage}: jobs wrote no features for {len(missing)} utterances (e.g. '{min(missing)}'); "
                          f"see {log_dir}/make_{kind.name}.*.log")
    feats_scp = {u: feats_scp[u] for u in utts}
    write_key_value(data / "feats.scp", feats_scp)
    write_key_value(data / "utt2num_frames", {u: num_frames[u] for u in utts})
    kind.save_config(cfg, data / kind.config_file)
    total = sum(int(num_frames[u]) for u in utts)
    print(f"{stage}: {data}: {total} frames of dimension {dim} in {time.time() - start:.1f} s -> "
          f"{data / 'feats.scp'} ({feat_dir}/raw_{kind.name}_{name}.*.ark)")
    return True


def stage_parser(name: str, description: str, config_help: str, override_example: str) -> argparse.ArgumentParser:
    """The command line of a ``speech compute-<name>`` stage (:func:`compute_features`'s options)."""
    parser = argparse.ArgumentParser(prog=f"speech compute-{name}", description=description)
    parser.add_argument("data_dir", help="Kaldi data directory (wav.scp, utt2spk, optional segments)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=f"override config keys, e.g. {override_example}")
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--nj", type=int, default=4, help="number of parallel jobs (default 4)")
    parser.add_argument("--cmd", default="local",
                        help="how jobs run: 'local' (default) or 'slurm [--mem 4G --time 1:00:00 ...]' (conf/slurm.conf)")
    parser.add_argument("--log-dir", help="per-job logs (default DATA_DIR/log)")
    parser.add_argument("--feat-dir", help="where the ark/scp files go (default DATA_DIR/data)")
    parser.add_argument("--force", action="store_true", help="recompute even when the features are complete")
    return parser


def _stage(kind: str, argv: list[str]) -> int:
    parser = stage_parser(
        kind, f"Compute Kaldi-compatible {kind} features of a data directory in N jobs; writes "
        f"feats.scp, utt2num_frames and {FEATURE_CONFIG} into it. Skips when they are complete.",
        f"feature config YAML (e.g. conf/features/{kind}.yaml); default: built-in", "num_mel_bins=40")
    args = parser.parse_intermixed_args(argv)

    # Without a config file the stage's own type is the default; a file that says another
    # type is a mistake worth reporting rather than overriding.
    overrides = ([f"type={kind}"] if args.config is None else []) + args.overrides
    cfg = load_config(FeatureConfig, args.config, overrides)
    if cfg.type != kind:
        raise SpeechError(f"{args.config or 'overrides'}: feature type is '{cfg.type}'; use speech compute-{cfg.type} "
                          f"or set type: {kind}")
    compute_features(args.data_dir, cfg, nj=args.nj, cmd=args.cmd, log_dir=args.log_dir, feat_dir=args.feat_dir,
                     force=args.force)
    return 0


def main_fbank(argv: list[str]) -> int:
    """``speech compute-fbank``: log-mel filterbank features."""
    return _stage("fbank", argv)


def main_mfcc(argv: list[str]) -> int:
    """``speech compute-mfcc``: MFCC features."""
    return _stage("mfcc", argv)


def _run_job(kind: FeatureKind, job: int, config: Path, data_dir: Path, ark: Path, utt2num_frames: Path) -> None:
    """One job: features of every utterance of ``data_dir`` -> ``ark`` + scp + utt2num_frames."""
    start = time.time()
    cfg = kind.load_config(config)
    dim = kind.check(cfg)
    extract = kind.make_extractor(cfg)
    d = DataDir.read(data_dir)
    utts = d.utterances()
    print(f"make_{kind.name} job {job}: {len(utts)} utterances of {data_dir} -> {ark}")
    print(f"config: {dataclasses.asdict(cfg)}")

    # One call per recording, so an unreadable file is pinned to its utterances.
    by_recording: dict[str, list[str]] = {}
    for utt in utts:
        by_recording.setdefault(d.segments[utt].recording if d.segments is not None else utt, []).append(utt)
    num_frames: dict[str, str] = {}
    with ark_writer(ark) as writer:
        for recording, members in by_recording.items():
            utt = members[0]
            try:
                for utt, samples in iter_utterance_audio(d, cfg.sample_rate, members):
                    feats = extract(samples)
                    if len(feats) == 0:
                        raise SpeechError(kind.too_short(cfg, len(samples) / cfg.sample_rate))
                    writer.write(utt, feats)
                    num_frames[utt] = str(len(feats))
            except SpeechError as e:
                value = d.wav_scp.get(recording, "?")
                raise SpeechError(f"utterance '{utt}' (recording '{recording}', wav.scp: {value}): {e}") from None
    write_key_value(utt2num_frames, num_frames)
    write_key_value(ark.with_suffix(".scp"), writer.entries)  # last: marks the job done
    total = sum(map(int, num_frames.values()))
    hours = total * kind.frame_shift_seconds(cfg) / 3600
    print(f"done: {len(num_frames)} utterances, {total} frames ({hours:.2f} h) of dimension {dim} "
          f"in {time.time() - start:.1f} s")


def job_main(kinds: dict[str, FeatureKind], argv: list[str]) -> int:
    """``python -m <a kind's job_module> --job J --kind NAME ...``: one job of the stage."""
    parser = argparse.ArgumentParser(prog=f"python -m {next(iter(kinds.values())).job_module}",
                                     description="one feature job")
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--kind", choices=sorted(kinds), required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ark", type=Path, required=True)
    parser.add_argument("--utt2num-frames", type=Path, required=True)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress and errors interleave in the log
    try:
        _run_job(kinds[args.kind], args.job, args.config, args.data, args.ark, args.utt2num_frames)
    except SpeechError as e:
        print(f"error: job {args.job}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(job_main(KALDI_KINDS, sys.argv[1:]))
