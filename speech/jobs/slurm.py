"""Slurm job arrays: a config in Kaldi's ``slurm.pl`` format and one ``sbatch --wait``.

The config says how the options a stage asks for (``gpu``, ``mem``, ``time``,
``num_threads``) become sbatch options, so one recipe runs on clusters with different
partitions or policies by changing only that file. Its lines (``#`` starts a comment)::

    command sbatch --export=ALL       # the submit command and what every job gets
    default gpu=0                     # the value when a stage does not set gpu
    option gpu=0                      # exactly this value: these options (here none)
    option gpu=* --gres=gpu:$0        # any other value, $0 standing for it

Which config (:meth:`SlurmConf.find`): the file named by ``--config`` in the ``--cmd``
string, else by ``$SPEECH_SLURM_CONF``, else the default shipped in this package
(``speech/jobs/slurm.conf``), so that a plain ``pip install`` has one too. A recipe names its
site's config as Kaldi recipes do theirs in ``cmd.sh``: the recipes' ``path.sh`` sets
``$SPEECH_SLURM_CONF`` to the repository's ``conf/slurm.conf`` (a link to the default until a
site replaces it). Unlike Kaldi's ``slurm.pl``, a ``conf/slurm.conf`` in the working directory
is not looked for: which cluster options a stage uses does not depend on where it is started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.jobs.threads import thread_exports

# The last line of a finished task's log, written by the task's own shell (see _script).
_ENDED = re.compile(r"# Ended \(code (\d+)\) at ")
# On a shared filesystem a log written on a compute node can reach the submit host a few
# seconds after sbatch returns; a log without its end line is re-read this long.
LOG_SYNC_WAIT_S = 10.0
# The environment variable naming the config when --cmd has no --config.
CONF_ENV = "SPEECH_SLURM_CONF"


@dataclass(frozen=True)
class SlurmConf:
    """A parsed slurm.conf: ``command`` argv, ``defaults`` {name: value} and ``options``
    {name: {value or "*": sbatch args}}."""

    path: Path
    command: tuple[str, ...]
    defaults: dict[str, str]
    options: dict[str, dict[str, tuple[str, ...]]]

    @classmethod
    def find(cls, path: str | os.PathLike | None = None) -> SlurmConf:
        """The config a stage's jobs use: ``path`` (--cmd's ``--config``), else the file named
        by ``$SPEECH_SLURM_CONF``, else the packaged default."""
        path = path or os.environ.get(CONF_ENV)
        if path:
            return cls.read(path)
        with resources.as_file(resources.files(__package__) / "slurm.conf") as packaged:
            return cls.read(packaged)

    @classmethod
    def read(cls, path: str | os.PathLike) -> SlurmConf:
        """Parse ``path``; raises SpeechError with ``file:line`` for malformed lines."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise SpeechError(f"{path}: cannot read the Slurm config ({e.strerror}); fix --cmd's --config "
                              f"or ${CONF_ENV}, or set neither for the packaged default") from None
        command: tuple[str, ...] = ()
        defaults: dict[str, str] = {}
        options: dict[str, dict[str, tuple[str, ...]]] = {}
        for number, line in enumerate(lines, 1):
            where = f"{path}:{number}"
            try:
                words = shlex.split(line, comments=True)
            except ValueError as e:
                raise SpeechError(f"{where}: {e}; fix the quoting") from None
            if not words:
                continue
            keyword, rest = words[0], words[1:]
            if keyword == "command" and rest:
                command = tuple(rest)
                continue
            name, _, value = rest[0].partition("=") if rest else ("", "", "")
            if keyword == "option" and name and value:
                options.setdefault(name, {})[value] = tuple(rest[1:])
            elif keyword == "default" and name and value and value != "*" and len(rest) == 1:
                defaults[name] = value
            else:
                raise SpeechError(f"{where}: expected 'command sbatch ...', 'option NAME=VALUE [sbatch options]' "
                                  f"or 'default NAME=VALUE', got: {line.strip()}")
        if not command:
            raise SpeechError(f"{path}: no 'command' line; add e.g. 'command sbatch --export=ALL'")
        return cls(path, command, defaults, options)

    def sbatch_argv(self, values: dict[str, str | None]) -> list[str]:
        """The submit command with the sbatch options for ``values`` ({name: value}; None or
        absent: the config's default, if any)."""
        argv = list(self.command)
        for name in sorted(set(values) | set(self.defaults)):
            value = values.get(name)
            if value is None:
                value = self.defaults.get(name)
            if value is None:
                continue
            rules = self.options.get(name, {})
            if value in rules:
                argv += rules[value]
            elif "*" in rules:
                argv += [arg.replace("$0", value) for arg in rules["*"]]
            else:
                raise SpeechError(f"{self.path}: no rule for {name}={value}; add a line "
                                  f"'option {name}=* <sbatch options with $0>' or 'option {name}={value} ...'")
        return argv


def _script(argvs: list[list[str]], logs: list[Path], num_threads: int) -> str:
    """The array's batch script: task J logs its command, runs it and ends its log with
    ``# Ended (code N) ...``, like a local job's log."""
    cases = []
    for j, (argv, log) in enumerate(zip(argvs, logs), 1):
        line = shlex.join(argv)
        cases.append(f"  {j}) log={shlex.quote(str(log))}; echo {shlex.quote('# ' + line)}; set -- {line} ;;")
    return f"""#!/usr/bin/env bash
# Slurm job array written by speech.jobs: task J runs command J; its log ends with its code.
case "$SLURM_ARRAY_TASK_ID" in
{chr(10).join(cases)}
  *) echo "no command for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
{thread_exports(num_threads)}
echo "# Started at $(date) on $(hostname), Slurm job ${{SLURM_ARRAY_JOB_ID}}_$SLURM_ARRAY_TASK_ID"
"$@"
code=$?
[ -n "$(tail -c 1 "$log")" ] && echo  # the command's output may lack its final newline
echo "# Ended (code $code) at $(date), elapsed time $SECONDS seconds"
exit $code
"""


def exit_code(log: Path) -> int | None:
    """The code on the log's last line ``# Ended (code N) ...``; None if it has no such line
    (the task was killed, cancelled or never started)."""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    match = _ENDED.match(tail.rstrip("\n").rsplit("\n", 1)[-1])
    return int(match.group(1)) if match else None


def submit_and_wait(argv: list[str], script: Path) -> None:
    """Run ``argv``, an ``sbatch --wait --parsable ... script`` command, until the job ends;
    a Ctrl-C cancels the job (without that it would run on). Raises SpeechError when the job
    could not be submitted; how it ended is for its logs to say."""
    if shutil.which(argv[0]) is None:
        raise SpeechError(f"--cmd slurm: '{argv[0]}' not found; install Slurm's client tools, "
                          "fix 'command' in the Slurm config, or use --cmd local")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = ""
    try:
        job_id = proc.stdout.readline().split(";")[0].strip()  # printed at submission
        _, err = proc.communicate()
    except BaseException:
        proc.kill()
        if job_id:
            subprocess.run(["scancel", job_id], check=False, capture_output=True)
        raise
    if not job_id:
        raise SpeechError(f"sbatch could not submit {script}: {err.strip() or f'exit code {proc.returncode}'}\n"
                          f"  command: {shlex.join(argv)}")


def wait_for_logs(logs: list[Path]) -> list[int | None]:
    """Each log's exit code (:func:`exit_code`), re-reading for up to LOG_SYNC_WAIT_S those
    that a shared filesystem has not shown complete yet."""
    codes = [exit_code(log) for log in logs]
    deadline = time.monotonic() + LOG_SYNC_WAIT_S
    while None in codes and time.monotonic() < deadline:
        time.sleep(0.5)
        codes = [code if code is not None else exit_code(log) for code, log in zip(codes, logs)]
    return codes


def run_array(
    argvs: list[list[str]], logs: list[Path], name: str, sbatch: list[str], max_parallel: int = 0, num_threads: int = 1
) -> list[int | None]:
    """Run ``argvs[j-1]`` as task ``j`` of one ``sbatch --wait`` array, logging to ``logs[j-1]``
    (``<prefix>.<j>.log``), at most ``max_parallel`` at once (0: no limit).

    ``sbatch`` is the submit argv from :meth:`SlurmConf.sbatch_argv`. Returns each task's
    exit code, None for a task whose log has no end line (killed, cancelled, never ran).
    """
    for log in logs:  # a log left by an earlier run must not pass for this run's
        log.unlink(missing_ok=True)
    script = logs[0].parent / f"{name}.sbatch.sh"
    with atomic_write(script) as f:
        f.write(_script(argvs, logs, num_threads))
    prefix = str(logs[0].resolve())[: -len(".1.log")]
    array = f"1-{len(argvs)}" + (f"%{max_parallel}" if max_parallel > 0 else "")
    submit_and_wait([*sbatch, "--wait", "--parsable", f"--array={array}", f"--job-name={name}",
                     f"--output={prefix.replace('%', '%%')}.%a.log", str(script)], script)
    return wait_for_logs(logs)
