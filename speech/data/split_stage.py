"""A data-dir stage as N jobs over split-data-dir parts, merged into one output dir, as
Kaldi's steps/decode.sh runs ``JOB=1:N`` over ``split{N}`` and its scoring reads them all.

A stage that takes ``--nj``/``--cmd`` (:func:`add_options`) asks :func:`work_dirs` where to
work:

- ``--nj 1 --cmd local`` (the default): here, on DATA_DIR into OUT_DIR, as before;
- otherwise the stage's process is the parent: it splits DATA_DIR into ``DATA_DIR/split{N}``
  (:func:`speech.data.split.split_data_dir`), runs job J as the same command line plus
  ``--nj N --job J`` through the job runner (local processes or one Slurm array; logs
  ``OUT_DIR/log/<name>.J.log``), merges ``OUT_DIR/split{N}/J`` into OUT_DIR with the stage's
  merge function and removes the job dirs; :func:`work_dirs` then returns None;
- in job J (``--job J``): on ``DATA_DIR/split{N}/J`` into ``OUT_DIR/split{N}/J``.

Splitting by utterance balances the jobs best; stages whose features are normalised per
speaker (the GMM-HMM's CMVN) split by speaker, so that every job sees all of a speaker's
frames, and use at most one job per speaker. The merge helpers write every file atomically;
a killed stage leaves its old outputs and is run again whole.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Callable

from speech.data.datadir import DataDir
from speech.data.split import split_data_dir, split_dir
from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key
from speech.jobs.runner import check_nj, parse_cmd, python_module_argv, run_jobs


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--nj``, ``--cmd`` and the hidden ``--job`` that the parent gives each job."""
    parser.add_argument("--nj", type=int, default=1,
                        help="parallel jobs over DATA_DIR/splitNJ, merged into the output dir (default 1)")
    parser.add_argument("--cmd", default="local",
                        help="how the jobs run: local, or 'slurm --gpu 1 --mem 4G ...' (conf/slurm.conf)")
    parser.add_argument("--job", type=int, help=argparse.SUPPRESS)


def work_dirs(prog: str, argv: list[str], args: argparse.Namespace, data_dir: Path, out_dir: Path,
              merge: Callable[[list[Path], Path], None], log_name: str,
              by_speaker: bool = False) -> tuple[Path, Path] | None:
    """(data dir, output dir) that this process works on, or None when it ran the stage as
    jobs and merged their outputs (see the module docstring).

    ``prog`` is the stage's command (``decode-asr``), ``argv`` its arguments as given;
    ``merge(job_out_dirs, out_dir)`` combines the jobs' outputs.
    """
    check_nj(args.nj)
    if args.job is not None:
        part = split_dir(data_dir, args.nj) / str(args.job)
        if not (part / "utt2spk").is_file():
            raise SpeechError(f"{part}: no such split part; --job is given by the stage itself to its jobs, "
                              "run the stage without it")
        return part, split_dir(out_dir, args.nj) / str(args.job)
    spec = parse_cmd(args.cmd)
    if args.nj == 1 and spec.cmd == "local":
        return data_dir, out_dir
    d = DataDir.read(data_dir)
    units = len(d.spk2utt()) if by_speaker else len(d.utterances())
    nj = min(args.nj, units)
    if nj < args.nj:
        print(f"speech {prog}: {data_dir} has {units} {'speakers' if by_speaker else 'utterances'}; "
              f"using --nj {nj}", file=sys.stderr)
    if nj == 1 and spec.cmd == "local":
        return data_dir, out_dir
    parts = split_data_dir(data_dir, nj, by_speaker=by_speaker)
    jobs_dir = split_dir(out_dir, nj)
    shutil.rmtree(jobs_dir, ignore_errors=True)  # a killed run's leftovers must not be merged
    run_jobs(lambda j: python_module_argv("speech", prog, *argv, "--nj", str(nj), "--job", str(j)), nj,
             out_dir / "log", log_name, spec)
    merge([jobs_dir / str(j) for j in range(1, nj + 1)], out_dir)
    shutil.rmtree(jobs_dir)
    print(f"speech {prog}: {len(parts)} jobs ({spec.cmd}) merged into {out_dir}; logs {out_dir}/log/{log_name}.*.log",
          file=sys.stderr)
    return None


def first_field(line: str) -> str:
    return line.split(maxsplit=1)[0]


def merge_lines(job_dirs: list[Path], out_dir: Path, name: str, key: Callable[[str], str] = first_field,
                unique: bool = False) -> None:
    """OUT_DIR/NAME: the jobs' NAME files' lines, sorted by ``key(line)`` (the utterance) as
    ``LC_ALL=C sort`` would, keeping each utterance's lines in their order (CTM words, n-best
    ranks); ``unique`` drops repeated lines. Jobs without the file add nothing; no job with
    it, no file."""
    sources = [job / name for job in job_dirs if (job / name).is_file()]
    if not sources:
        return
    lines: list[str] = []
    for source in sources:
        lines += source.read_text(encoding="utf-8").splitlines()
    if unique:
        lines = list(dict.fromkeys(lines))
    with atomic_write(out_dir / name) as f:
        f.writelines(line + "\n" for line in sorted(lines, key=lambda line: kaldi_sort_key(key(line))))


def merge_files(job_dirs: list[Path], out_dir: Path, subdir: str) -> None:
    """Move every job's SUBDIR/* (one file per utterance, e.g. TextGrids) to OUT_DIR/SUBDIR."""
    (out_dir / subdir).mkdir(parents=True, exist_ok=True)
    for job in job_dirs:
        for path in sorted((job / subdir).glob("*")) if (job / subdir).is_dir() else []:
            path.replace(out_dir / subdir / path.name)


def copy_first(job_dirs: list[Path], out_dir: Path, name: str) -> None:
    """OUT_DIR/NAME from the first job that wrote it: a file every job writes the same."""
    for job in job_dirs:
        if (job / name).is_file():
            with atomic_write(out_dir / name) as f:
                f.write((job / name).read_text(encoding="utf-8"))
            return
