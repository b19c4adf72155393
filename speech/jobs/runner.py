"""Run jobs ``1..N`` of a stage, locally or as one Slurm array, with Kaldi-style per-job logs.

Each job's log starts with its command and ends with ``# Ended (code N) at <date>, elapsed
time S seconds``, written by whoever ran it (this process locally, the task's own shell
under Slurm), so a log alone says whether and how its job finished, as Kaldi's do. Local
jobs never outlive their stage: Ctrl-C or SIGTERM stops them, and SIGTERM then exits 143.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from speech.errors import JobError, SpeechError
from speech.jobs.slurm import SlurmConf, run_array
from speech.jobs.threads import thread_env

# How long stopped jobs get to end after SIGTERM before they are killed.
_STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class JobSpec:
    """How a stage's jobs run, and what each job needs.

    ``cmd`` is ``local`` or ``slurm``. ``max_parallel`` caps the jobs running at once (0: all).
    ``num_threads`` is each job's OpenMP/MKL threads when several jobs run (local) and its
    CPUs under Slurm; ``gpu``, ``mem`` (e.g. ``4G``) and ``time`` (e.g. ``1:00:00``) are
    what each Slurm task asks for, mapped to sbatch options by ``slurm_conf`` (None: see
    :meth:`SlurmConf.find`). Local jobs share the machine and ignore ``gpu``, ``mem`` and ``time``.
    """

    cmd: str = "local"
    max_parallel: int = 0
    num_threads: int = 1
    gpu: int = 0
    mem: str | None = None
    time: str | None = None
    slurm_conf: str | None = None


# Kaldi's option names in a --cmd string -> JobSpec fields.
_CMD_OPTIONS = {"--max-jobs-run": "max_parallel", "--num-threads": "num_threads", "--gpu": "gpu",
                "--mem": "mem", "--time": "time", "--config": "slurm_conf"}


def parse_cmd(text: str) -> JobSpec:
    """JobSpec from a Kaldi-style ``--cmd`` value, e.g. ``"slurm --gpu 1 --mem 4G"``.

    Options: ``--max-jobs-run N --num-threads N --gpu N --mem X --time T --config FILE``.
    """
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise SpeechError(f"--cmd '{text}': {e}") from None
    if not words:
        raise SpeechError("--cmd is empty; use 'local' or 'slurm [--gpu N --mem X --time T ...]'")
    spec = JobSpec(cmd=words[0])
    if len(words) % 2 == 0:
        raise SpeechError(f"--cmd '{text}': options come as '--name value' pairs")
    for option, value in zip(words[1::2], words[2::2]):
        field = _CMD_OPTIONS.get(option)
        if field is None:
            raise SpeechError(f"--cmd '{text}': unknown option {option}; known: {' '.join(_CMD_OPTIONS)}")
        whole = isinstance(getattr(spec, field), int)
        if whole and not value.isdigit():
            raise SpeechError(f"--cmd '{text}': {option} takes a whole number, got '{value}'")
        spec = replace(spec, **{field: int(value) if whole else value})
    _check(spec)
    return spec


def check_nj(nj: int) -> None:
    """Raise SpeechError unless ``nj`` is a usable number of jobs (at least 1)."""
    if nj < 1:
        raise SpeechError(f"--nj must be at least 1 (got {nj})")


def _check(spec: JobSpec) -> None:
    if spec.cmd not in ("local", "slurm"):
        raise SpeechError(f"--cmd must be 'local' or 'slurm' (got '{spec.cmd}')")
    if spec.num_threads < 1 or spec.gpu < 0 or spec.max_parallel < 0:
        raise SpeechError(f"job options out of range: num_threads={spec.num_threads} (>= 1), gpu={spec.gpu} (>= 0), "
                          f"max_parallel={spec.max_parallel} (>= 0)")


def start_log(path: Path, argv: list[str]) -> BinaryIO:
    """Open a job's log with its first lines, the command and the start time."""
    log = open(path, "wb+")
    log.write(f"# {shlex.join(argv)}\n# Started at {time.ctime()}\n".encode())
    log.flush()
    return log


def end_log(log: BinaryIO, code: int, start: float) -> None:
    """End a job's log with ``# Ended (code N) at <date>, elapsed time S seconds`` and close it."""
    log.seek(-1, os.SEEK_END)  # the job's output may lack its final newline
    if log.read(1) != b"\n":
        log.write(b"\n")
    log.write(f"# Ended (code {code}) at {time.ctime()}, elapsed time {time.time() - start:.0f} seconds\n".encode())
    log.close()


@contextlib.contextmanager
def _sigterm_noted() -> Iterator[list[int]]:
    """While inside, SIGTERM is appended to the yielded list instead of ending the process
    (in the main thread; elsewhere Python cannot catch signals and the list stays empty)."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(signum))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each job's process group (the job and whatever it started, such as wav.scp
    pipes), then SIGKILL any group whose job has not ended within a few seconds."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + _STOP_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _run_local(argvs: list[list[str]], logs: list[Path], max_parallel: int, num_threads: int) -> list[int]:
    env = dict(os.environ)
    if len(argvs) > 1:
        # Several CPU-heavy jobs on one machine slow each other down badly when each one uses
        # every core (measured: 15x on a BLSTM step); one thread per job is faster overall.
        env.update(thread_env(num_threads))
    limit = max_parallel if max_parallel > 0 else len(argvs)
    codes = [0] * len(argvs)
    pending = deque(range(len(argvs)))
    running: dict[int, tuple[subprocess.Popen, float, BinaryIO]] = {}
    # SIGTERM (kill, a batch system's time limit) ends the stage as Ctrl-C does: jobs first.
    # Left to the default action the stage would die alone, and its jobs, each in a process
    # group of its own (so that stopping one stops what it started), would keep writing.
    with _sigterm_noted() as terminated:
        try:
            while pending or running:
                if terminated:
                    print(f"terminated (SIGTERM); stopping {len(running)} running jobs", file=sys.stderr)
                    raise SystemExit(128 + signal.SIGTERM)  # what a shell reports for death by SIGTERM
                while pending and len(running) < limit:
                    i = pending.popleft()
                    log = start_log(logs[i], argvs[i])
                    start = time.time()
                    try:
                        proc = subprocess.Popen(argvs[i], stdout=log, stderr=subprocess.STDOUT, env=env,
                                                process_group=0)
                    except OSError as e:  # e.g. no such program: the job fails as it would in a shell
                        log.write(f"{e}\n".encode())
                        codes[i] = 127
                        end_log(log, 127, start)
                        continue
                    running[i] = (proc, start, log)
                for i, (proc, start, log) in list(running.items()):
                    code = proc.poll()
                    if code is not None:
                        codes[i] = code if code >= 0 else 128 - code  # killed by signal N: 128+N, as in a shell
                        end_log(log, codes[i], start)
                        del running[i]
                if running:
                    time.sleep(0.05)
        finally:  # interrupted (Ctrl-C, SIGTERM): leave no job behind
            _stop([proc for proc, _, _ in running.values()])
            for _, _, log in running.values():
                log.close()
    return codes


def run_jobs(
    job_argv: Callable[[int], list[str]],
    nj: int,
    log_dir: str | os.PathLike,
    name: str,
    spec: JobSpec = JobSpec(),
) -> None:
    """Run jobs ``1..nj``; job ``j`` runs ``job_argv(j)``, logging to ``log_dir/name.j.log``.

    Locally the jobs run as child processes, ``spec.max_parallel`` at a time; under Slurm as
    one ``sbatch --wait`` array. Returns when all have ended; raises JobError naming the logs
    of the jobs that failed, SpeechError when the jobs could not be started at all.
    """
    check_nj(nj)
    _check(spec)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    argvs = [job_argv(j) for j in range(1, nj + 1)]
    logs = [log_dir / f"{name}.{j}.log" for j in range(1, nj + 1)]
    if spec.cmd == "local":
        codes: list[int | None] = list(_run_local(argvs, logs, spec.max_parallel, spec.num_threads))
    else:
        conf = SlurmConf.find(spec.slurm_conf)
        sbatch = conf.sbatch_argv({"gpu": str(spec.gpu), "num_threads": str(spec.num_threads),
                                   "mem": spec.mem, "time": spec.time})
        codes = run_array(argvs, logs, name, sbatch, spec.max_parallel, spec.num_threads)
    failed = [(log, code) for log, code in zip(logs, codes) if code != 0]
    if failed:
        detail = ", ".join(f"{log} ({'no end line: killed?' if code is None else f'code {code}'})"
                           for log, code in failed)
        raise JobError(f"{len(failed)} of {nj} '{name}' jobs failed; see {detail}")


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
