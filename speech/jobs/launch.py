"""Run one heavy command as one job, on this machine or on Slurm: ``speech launch``.

    speech launch --cmd CMD [--ngpu N] [--num-nodes M] [--nproc P] --log LOG -- COMMAND ...

What ESPnet's ``launch.py`` and Kaldi's ``$cuda_cmd LOG COMMAND`` do for training stages.
``--ngpu`` is GPUs per node (ESPnet's meaning), and the run has ``--nproc`` processes a node
(default: one per GPU, else one), ``M x P`` ranks in all:

- ``--cmd local``: COMMAND runs here, its output going to the console and to LOG. With more
  than one process it runs under ``torchrun --standalone`` (gloo on CPU, NCCL on GPUs).
- ``--cmd slurm ...``: one ``sbatch --wait`` job of M nodes x P tasks; COMMAND runs in the
  job's batch script, or, with more than one task, under ``srun`` (one process a task; the
  trainer takes its rank from SLURM_PROCID, :mod:`speech.train.distributed`). The job asks for
  the ``--gpu``/``--mem``/``--time``/``--num-threads`` of the ``--cmd`` string through the
  Slurm config (:mod:`speech.jobs.slurm`), ``--gpu`` being replaced by ``--ngpu``.

Pre-emption: the job is submitted with ``--requeue`` and ``--signal=B:USR1@S`` (S =
``--stop-warning``, 120 s), so Slurm warns its batch script S seconds before the time limit.
The script passes SIGUSR1 on to COMMAND (srun passes it on to every task), a trainer then
checkpoints after its current update and exits with code 75 (:class:`speech.errors.Preempted`),
and the script requeues the job (``scontrol requeue``): the requeued run resumes from the
checkpoint, appending to the same LOG. Slurm holds a requeued job for about two minutes
before it may start again. A SIGTERM (scancel, or a pre-emption that requeues the job itself)
is passed on the same way but never leads to a requeue by the script. A job that fails
raises JobError naming LOG and its exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from speech.errors import PREEMPTED_EXIT, JobError, SpeechError
from speech.fileio import atomic_write
from speech.jobs.runner import JobSpec, end_log, parse_cmd, start_log
from speech.jobs.slurm import SlurmConf, submit_and_wait, wait_for_logs
from speech.jobs.threads import thread_env, thread_exports

def torchrun_argv(command: list[str], nproc: int) -> list[str]:
    """``command`` as ``nproc`` ranks on this machine (torchrun picks a free rendezvous port)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(nproc), "--no-python", *command]


def run_local(command: list[str], log_path: Path, nproc: int, num_threads: int) -> int:
    """Run ``command`` (as ``nproc`` torchrun ranks when more than one), copying its output to
    the console and to ``log_path``; returns its exit code. A SIGTERM to this process is passed
    on, so that a trainer stops at its next update with a checkpoint."""
    argv = command if nproc == 1 else torchrun_argv(command, nproc)
    env = dict(os.environ)
    if nproc > 1:  # each rank with every core would slow the others down many times over
        env.update(thread_env(num_threads))
    log = start_log(log_path, argv)
    start = time.time()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except OSError as e:
        log.write(f"{e}\n".encode())
        end_log(log, 127, start)
        return 127
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    try:
        out = sys.stdout.buffer
        while chunk := os.read(proc.stdout.fileno(), 65536):
            out.write(chunk)
            out.flush()
            log.write(chunk)
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = code if code >= 0 else 128 - code
    end_log(log, code, start)
    return code


def job_script(command: list[str], log_path: Path, tasks: int, num_threads: int) -> str:
    """The batch script of a Slurm launch: COMMAND (under srun when ``tasks`` > 1) with stop
    signals passed on, requeue on a checkpointed stop, and the log lines of a local job."""
    line = shlex.join(command)
    run = f"srun --kill-on-bad-exit=1 {line}" if tasks > 1 else line
    log = shlex.quote(str(log_path))
    return f"""#!/usr/bin/env bash
# Slurm job written by speech launch. Its log (--open-mode=append) keeps every run of a requeued job.
echo {shlex.quote('# ' + line)}
echo "# Started at $(date) on $(hostname), Slurm job $SLURM_JOB_ID, restart ${{SLURM_RESTART_COUNT:-0}}"
{thread_exports(num_threads)}
got=""
# bash runs a trap only once the foreground command ends: so COMMAND runs in the background.
trap 'got=USR1; kill -USR1 $child 2>/dev/null' USR1
trap 'got=TERM; kill -TERM $child 2>/dev/null' TERM
{run} &
child=$!
while :; do
  wait $child
  code=$?
  kill -0 $child 2>/dev/null || break  # else wait was cut short by a trapped signal
done
[ -n "$(tail -c 1 {log})" ] && echo  # the command's output may lack its final newline
if [ $code -eq {PREEMPTED_EXIT} ] && [ "$got" != TERM ]; then
  echo "# Stopped with a checkpoint (code {PREEMPTED_EXIT}) at $(date), elapsed time $SECONDS seconds: requeueing"
  trap - USR1 TERM  # the requeue ends this script with SIGTERM
  if scontrol requeue "$SLURM_JOB_ID"; then sleep 300; fi
  echo "# scontrol requeue failed (was the job submitted with --requeue?); run the stage again to resume"
fi
echo "# Ended (code $code) at $(date), elapsed time $SECONDS seconds"
exit $code
"""


def run_slurm(command: list[str], log_path: Path, spec: JobSpec, nodes: int, nproc: int, name: str,
              stop_warning: int) -> int | None:
    """Run ``command`` as one Slurm job of ``nodes`` x ``nproc`` tasks; returns the exit code on
    the last line of its log (None: killed or cancelled, no end line)."""
    conf = SlurmConf.find(spec.slurm_conf)
    sbatch = conf.sbatch_argv({"gpu": str(spec.gpu), "num_threads": str(spec.num_threads),
                               "mem": spec.mem, "time": spec.time})
    log_path.unlink(missing_ok=True)  # an earlier run's log must not pass for this one's
    script = log_path.with_name(f"{name}.sbatch.sh")
    with atomic_write(script) as f:
        f.write(job_script(command, log_path.resolve(), nodes * nproc, spec.num_threads))
    submit_and_wait([*sbatch, "--wait", "--parsable", f"--job-name={name}", f"--nodes={nodes}",
                     f"--ntasks-per-node={nproc}", "--requeue", "--open-mode=append",
                     f"--signal=B:USR1@{stop_warning}", f"--output={str(log_path.resolve()).replace('%', '%%')}",
                     str(script)], script)
    return wait_for_logs([log_path])[0]


def launch(command: list[str], log_path: str | os.PathLike, cmd: str = "local", ngpu: int | None = None,
           num_nodes: int = 1, nproc: int = 0, name: str | None = None, stop_warning: int = 120) -> None:
    """Run ``command`` as one job (see the module docstring); raises JobError naming the log
    and the exit code when it fails, SpeechError for options that cannot run."""
    if not command:
        raise SpeechError("no command to launch; give it after '--', e.g. -- speech train-asr ...")
    spec = parse_cmd(cmd)
    gpus = spec.gpu if ngpu is None else ngpu
    if gpus < 0 or num_nodes < 1 or nproc < 0 or stop_warning < 1:
        raise SpeechError(f"--ngpu {gpus} (>= 0), --num-nodes {num_nodes} (>= 1), --nproc {nproc} (>= 0) or "
                          f"--stop-warning {stop_warning} (>= 1) is out of range")
    per_node = nproc or max(gpus, 1)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    name = name or log_path.stem
    if spec.cmd == "local":
        if num_nodes > 1:
            raise SpeechError(f"--num-nodes {num_nodes} needs a cluster: use --cmd slurm, or --num-nodes 1")
        print(f"speech launch: {per_node} process(es) here; log: {log_path}", file=sys.stderr, flush=True)
        code: int | None = run_local(command, log_path, per_node, spec.num_threads)
    else:
        print(f"speech launch: Slurm job {name!r}, {num_nodes} node(s) x {per_node} task(s), {gpus} GPU(s) a node "
              f"log: {log_path}", file=sys.stderr, flush=True)
        code = run_slurm(command, log_path, dataclasses.replace(spec, gpu=gpus), num_nodes, per_node, name,
                         stop_warning)
    if code == PREEMPTED_EXIT:
        raise JobError(f"'{name}' stopped on a signal with a checkpoint (code {PREEMPTED_EXIT}); run the stage "
                       f"again to resume; see {log_path}")
    if code != 0:
        raise JobError(f"'{name}' failed ({'no end line: killed or cancelled?' if code is None else f'code {code}'}); "
                       f"see {log_path}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="speech launch", description=__doc__.split("\n\n")[0],
        usage="speech launch --log LOG [--cmd CMD] [--ngpu N] [--num-nodes M] [--nproc P] -- COMMAND ...")
    p.add_argument("--log", type=Path, required=True, help="the job's log (its console output)")
    p.add_argument("--cmd", default="local", help="local, or 'slurm [--mem 8G --time 4:00:00 ...]' (as for N-job "
                                                  "stages; its --gpu is replaced by --ngpu)")
    p.add_argument("--ngpu", type=int, help="GPUs per node (default: the --cmd string's --gpu, else 0)")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (Slurm only; default 1)")
    p.add_argument("--nproc", type=int, default=0, help="processes per node (default: one per GPU, else one); "
                                                        "more than one train data parallel")
    p.add_argument("--name", help="Slurm job name (default: the log's name)")
    p.add_argument("--stop-warning", type=int, default=120,
                   help="seconds before the time limit at which Slurm sends SIGUSR1 (default 120)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- and the command, e.g. -- speech train-asr ...")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    launch(command, args.log, args.cmd, args.ngpu, args.num_nodes, args.nproc, args.name, args.stop_warning)
