"""Local and Slurm job arrays with Kaldi-style per-job logs.

Each job's log starts with the command and ends with ``# Ended (code N) at <date>, elapsed
time S seconds``, so a log tells whether the job finished, as Kaldi's do.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from speech.errors import JobError, SpeechError


@dataclass(frozen=True)
class JobSpec:
    """How a stage's jobs run: ``cmd`` is ``local`` or ``slurm``; ``slurm_opts`` go to sbatch."""

    cmd: str = "local"
    max_parallel: int = 0  # 0: all jobs at once (local only)
    slurm_opts: tuple[str, ...] = ()


def _single_thread_env() -> dict[str, str]:
    # Several CPU-heavy jobs on one machine slow each other down badly when each one uses
    # every core (measured: 15x on a BLSTM step); one thread per job is faster overall.
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    return env


def _run_local(argvs: list[list[str]], logs: list[Path], max_parallel: int) -> list[int]:
    env = _single_thread_env() if len(argvs) > 1 else dict(os.environ)
    limit = max_parallel if max_parallel > 0 else len(argvs)
    codes: list[int | None] = [None] * len(argvs)
    running: dict[int, tuple[subprocess.Popen, float, object]] = {}
    pending = list(range(len(argvs)))
    while pending or running:
        while pending and len(running) < limit:
            i = pending.pop(0)
            log = open(logs[i], "w", encoding="utf-8")
            log.write(f"# {shlex.join(argvs[i])}\n# Started at {time.ctime()}\n")
            log.flush()
            proc = subprocess.Popen(argvs[i], stdout=log, stderr=subprocess.STDOUT, env=env)
            running[i] = (proc, time.time(), log)
        for i, (proc, start, log) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            log.write(f"# Ended (code {code}) at {time.ctime()}, elapsed time {time.time() - start:.0f} seconds\n")
            log.close()
            codes[i] = code
            del running[i]
        if running:
            time.sleep(0.05)
    return [int(c) for c in codes]  # type: ignore[arg-type]


def _run_slurm(argvs: list[list[str]], logs: list[Path], opts: Sequence[str]) -> list[int]:
    n = len(argvs)
    script = logs[0].parent / f".{logs[0].name.rsplit('.', 2)[0]}.sbatch.sh"
    cases = "\n".join(f"  {j + 1}) exec {shlex.join(a)} ;;" for j, a in enumerate(argvs))
    script.write_text(
        "#!/usr/bin/env bash\n"
        "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1\n"
        f'echo "# job $SLURM_ARRAY_TASK_ID of array $SLURM_ARRAY_JOB_ID on $(hostname)"\n'
        f'case "$SLURM_ARRAY_TASK_ID" in\n{cases}\nesac\n'
    )
    log_pattern = str(logs[0]).rsplit(".", 2)[0] + ".%a.log"
    argv = ["sbatch", "--wait", "--parsable", f"--array=1-{n}", f"--output={log_pattern}", *opts, str(script)]
    try:
        subprocess.run(argv, check=False, capture_output=True, text=True)
    except FileNotFoundError:
        raise SpeechError("--cmd slurm: 'sbatch' not found; install Slurm or use --cmd local") from None
    # sbatch --wait returns the highest exit code of the array; each job's own status is
    # read back from its log, which the job's shell ends with an exit line.
    codes = []
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        codes.append(0 if text and "# ok" in text.splitlines()[-1:] else 1)
    return codes


def run_jobs(
    job_argv: Callable[[int], list[str]],
    nj: int,
    log_dir: str | os.PathLike,
    name: str,
    spec: JobSpec = JobSpec(),
) -> None:
    """Run jobs ``1..nj``; job ``j`` runs ``job_argv(j)``, logging to ``log_dir/name.j.log``.

    Raises JobError naming the logs of the jobs that failed.
    """
    if nj < 1:
        raise SpeechError(f"--nj must be at least 1 (got {nj})")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    argvs = [job_argv(j) for j in range(1, nj + 1)]
    logs = [log_dir / f"{name}.{j}.log" for j in range(1, nj + 1)]
    if spec.cmd == "local":
        codes = _run_local(argvs, logs, spec.max_parallel)
    elif spec.cmd == "slurm":
        wrapped = [["bash", "-c", f'{shlex.join(a)} && echo "# ok"'] for a in argvs]
        codes = _run_slurm(wrapped, logs, spec.slurm_opts)
    else:
        raise SpeechError(f"--cmd must be 'local' or 'slurm' (got '{spec.cmd}')")
    failed = [str(log) for log, code in zip(logs, codes) if code != 0]
    if failed:
        raise JobError(f"{len(failed)} of {nj} jobs failed; see {', '.join(failed)}")


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
