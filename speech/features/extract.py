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
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from speech.config import load_config, save_config
from speech.data.datadir import FEATURE_CONFIG, DataDir, iter_utterance_audio
from speech.data.split import split_data_dir
from speech.errors import DataDirError, SpeechError
from speech.features.extractor import FeatureConfig, make_extractor
from speech.features.storage import ark_paths, ark_writer
from speech.fileio import read_key_value, write_key_value
from speech.jobs.runner import check_nj, parse_cmd, python_module_argv, run_jobs
from speech.stage import skip

__all__ = ["FeatureConfig", "compute_features", "main_fbank", "main_mfcc", "make_extractor"]


def _same_features(data: Path, utts: list[str], cfg: FeatureConfig) -> bool:
    """feats.scp and utt2num_frames cover exactly ``utts``, their arks exist, config equal."""
    if load_config(FeatureConfig, data / FEATURE_CONFIG) != cfg:
        return False
    scp = read_key_value(data / "feats.scp")
    wanted = set(utts)
    return set(scp) == wanted and set(read_key_value(data / "utt2num_frames")) == wanted and all(
        Path(p).is_file() for p in ark_paths(scp)
    )


def compute_features(
    data_dir: str | Path,
    cfg: FeatureConfig,
    nj: int = 4,
    cmd: str = "local",
    log_dir: str | Path | None = None,
    feat_dir: str | Path | None = None,
    force: bool = False,
) -> bool:
    """Run the stage (see the module docstring) with a resolved ``cfg``; False when skipped."""
    stage = f"compute-{cfg.type}"
    # Every option is checked before an output is touched: a typo must not cost the
    # features of an earlier run.
    check_nj(nj)
    extractor = make_extractor(cfg)
    job_spec = parse_cmd(cmd)
    data = Path(data_dir)
    d = DataDir.read(data)
    utts = d.utterances()
    if not utts:
        raise DataDirError(f"{data / 'utt2spk'}: no utterances; nothing to compute features for")
    # No input times: fix-data-dir rewrites the wav.scp of a dir whose features still fit
    # it, so only the utterances and the config say whether they do.
    outputs = [data / "feats.scp", data / "utt2num_frames", data / FEATURE_CONFIG]
    if skip(stage, f"{data}: feats.scp has {cfg.type} features for all {len(utts)} utterances with the same config",
            outputs, check=lambda: _same_features(data, utts, cfg), force=force):
        return False

    name = data.resolve().name
    log_dir = Path(log_dir) if log_dir is not None else data / "log"
    feat_dir = (Path(feat_dir) if feat_dir is not None else data / "data").absolute()
    log_dir.mkdir(parents=True, exist_ok=True)
    feat_dir.mkdir(parents=True, exist_ok=True)
    # Until the new features are complete the data dir must not look finished: a killed
    # run then leaves a dir that the next run redoes.
    for stale in (FEATURE_CONFIG, "feats.scp", "utt2num_frames"):
        if (data / stale).exists():
            print(f"{stage}: removing old {data / stale}")
            (data / stale).unlink()
    for tmp in feat_dir.glob(f".raw_{cfg.type}_{name}.*.tmp"):  # left by killed jobs
        tmp.unlink()

    if nj > len(utts):
        print(f"{stage}: only {len(utts)} utterances; using --nj {len(utts)} instead of {nj}")
        nj = len(utts)
    by_speaker = len(set(d.utt2spk.values())) >= nj
    splits = split_data_dir(data, nj, by_speaker=by_speaker)
    job_config = log_dir / f"make_{cfg.type}.config.yaml"
    save_config(cfg, job_config)

    def ark(j: int) -> Path:
        return feat_dir / f"raw_{cfg.type}_{name}.{j}.ark"

    def job_argv(j: int) -> list[str]:
        return python_module_argv(
            "speech.features.extract", "--job", str(j), "--config", str(job_config), "--data", str(splits[j - 1]),
            "--ark", str(ark(j)), "--utt2num-frames", str(log_dir / f"utt2num_frames.{j}"),
        )

    print(f"{stage}: {data}: {len(utts)} utterances in {nj} jobs (split by {'speaker' if by_speaker else 'utterance'}), "
          f"logs {log_dir}/make_{cfg.type}.*.log")
    start = time.time()
    run_jobs(job_argv, nj, log_dir, f"make_{cfg.type}", job_spec)

    feats_scp: dict[str, str] = {}
    num_frames: dict[str, str] = {}
    for j in range(1, nj + 1):
        feats_scp.update(read_key_value(ark(j).with_suffix(".scp")))
        num_frames.update(read_key_value(log_dir / f"utt2num_frames.{j}"))
    missing = set(utts) - set(feats_scp)
    if missing:
        raise SpeechError(f"{stage}: jobs wrote no features for {len(missing)} utterances (e.g. '{min(missing)}'); "
                          f"see {log_dir}/make_{cfg.type}.*.log")
    feats_scp = {u: feats_scp[u] for u in utts}
    write_key_value(data / "feats.scp", feats_scp)
    write_key_value(data / "utt2num_frames", {u: num_frames[u] for u in utts})
    save_config(cfg, data / FEATURE_CONFIG)
    total = sum(int(num_frames[u]) for u in utts)
    print(f"{stage}: {data}: {total} frames of dimension {extractor.dim} in {time.time() - start:.1f} s -> "
          f"{data / 'feats.scp'} ({feat_dir}/raw_{cfg.type}_{name}.*.ark)")
    return True


def _stage(kind: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"speech compute-{kind}",
        description=f"Compute Kaldi-compatible {kind} features of a data directory in N jobs; writes "
        f"feats.scp, utt2num_frames and {FEATURE_CONFIG} into it. Skips when they are complete.",
    )
    parser.add_argument("data_dir", help="Kaldi data directory (wav.scp, utt2spk, optional segments)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys, e.g. num_mel_bins=40")
    parser.add_argument("--config", help=f"feature config YAML (e.g. conf/features/{kind}.yaml); default: built-in")
    parser.add_argument("--nj", type=int, default=4, help="number of parallel jobs (default 4)")
    parser.add_argument("--cmd", default="local",
                        help="how jobs run: 'local' (default) or 'slurm [--mem 4G --time 1:00:00 ...]' (conf/slurm.conf)")
    parser.add_argument("--log-dir", help="per-job logs (default DATA_DIR/log)")
    parser.add_argument("--feat-dir", help="where the ark/scp files go (default DATA_DIR/data)")
    parser.add_argument("--force", action="store_true", help="recompute even when the features are complete")
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


def _run_job(job: int, config: Path, data_dir: Path, ark: Path, utt2num_frames: Path) -> None:
    """One job: features of every utterance of ``data_dir`` -> ``ark`` + scp + utt2num_frames."""
    start = time.time()
    cfg = load_config(FeatureConfig, config)
    extract = make_extractor(cfg)
    d = DataDir.read(data_dir)
    utts = d.utterances()
    print(f"make_{cfg.type} job {job}: {len(utts)} utterances of {data_dir} -> {ark}")
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
                        raise SpeechError(
                            f"{len(samples) / cfg.sample_rate:.3f} s is shorter than one {cfg.frame_length_ms:g} ms "
                            f"frame; remove the utterance (speech subset-data-dir) or set snip_edges=false"
                        )
                    writer.write(utt, feats)
                    num_frames[utt] = str(len(feats))
            except SpeechError as e:
                value = d.wav_scp.get(recording, "?")
                raise SpeechError(f"utterance '{utt}' (recording '{recording}', wav.scp: {value}): {e}") from None
    write_key_value(utt2num_frames, num_frames)
    write_key_value(ark.with_suffix(".scp"), writer.entries)  # last: marks the job done
    total = sum(map(int, num_frames.values()))
    hours = total * cfg.frame_shift_ms / 1000 / 3600
    print(f"done: {len(num_frames)} utterances, {total} frames ({hours:.2f} h) of dimension {extract.dim} "
          f"in {time.time() - start:.1f} s")


def _job_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m speech.features.extract", description="one feature job")
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ark", type=Path, required=True)
    parser.add_argument("--utt2num-frames", type=Path, required=True)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress and errors interleave in the log
    try:
        _run_job(args.job, args.config, args.data, args.ark, args.utt2num_frames)
    except SpeechError as e:
        print(f"error: job {args.job}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv[1:]))
