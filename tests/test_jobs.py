"""speech.jobs: local jobs, --cmd parsing, Slurm config mapping and lookup (also from a
non-editable install), and a real one-node Slurm cluster (tools/local_slurm.sh), which needs
root and the packages slurm-wlm and munge."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speech.jobs.slurm
from speech.errors import JobError, SpeechError
from speech.jobs import JobSpec, parse_cmd, run_jobs
from speech.jobs.slurm import CONF_ENV, SlurmConf

REPO = Path(__file__).resolve().parents[1]
ENDED = re.compile(r"^# Ended \(code (\d+)\) at .+, elapsed time \d+ seconds$")


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def end_code(log: Path) -> int:
    match = ENDED.match(lines(log)[-1])
    assert match, f"{log} does not end with an end line: {lines(log)[-1:]}"
    return int(match.group(1))


def sh(script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, "sh", *args]


# --- local --------------------------------------------------------------------------------


def test_local_logs_codes_and_failed_job_named(tmp_path):
    script = 'echo "out $1"; echo "err $1" >&2; [ "$1" != 2 ] || exit 5'
    with pytest.raises(JobError) as info:
        run_jobs(lambda j: sh(script, str(j)), 3, tmp_path / "log", "demo")
    message = str(info.value)
    assert "1 of 3 'demo' jobs failed" in message
    assert f"{tmp_path}/log/demo.2.log (code 5)" in message
    assert "demo.1.log" not in message and "demo.3.log" not in message
    for j in (1, 2, 3):
        log = tmp_path / "log" / f"demo.{j}.log"
        assert lines(log)[0] == "# " + shlex.join(sh(script, str(j)))
        assert f"out {j}" in lines(log) and f"err {j}" in lines(log)
        assert end_code(log) == (5 if j == 2 else 0)


def test_local_success_missing_program_signal_and_unterminated_output(tmp_path):
    run_jobs(lambda j: sh("printf partial"), 1, tmp_path, "ok")
    assert lines(tmp_path / "ok.1.log")[-2] == "partial"  # the end line stays a line of its own
    assert end_code(tmp_path / "ok.1.log") == 0

    argvs = {1: [str(tmp_path / "no-such-program")], 2: sh("kill -9 $$")}
    with pytest.raises(JobError, match=r"bad\.1\.log \(code 127\).*bad\.2\.log \(code 137\)"):
        run_jobs(argvs.__getitem__, 2, tmp_path, "bad")
    assert "no-such-program" in (tmp_path / "bad.1.log").read_text()


def _intervals(log_dir: Path, name: str, nj: int) -> list[tuple[float, float]]:
    return [tuple(map(float, lines(log_dir / f"{name}.{j}.log")[2:4])) for j in range(1, nj + 1)]


def test_local_jobs_run_concurrently_up_to_max_parallel(tmp_path):
    # Each job logs when it started and ended sleeping; overlap, not wall time, is checked,
    # so a loaded machine cannot make this flaky.
    job = sh("date +%s.%N; sleep 0.4; date +%s.%N")
    run_jobs(lambda j: job, 2, tmp_path, "par")
    (s1, e1), (s2, e2) = _intervals(tmp_path, "par", 2)
    assert s2 < e1 and s1 < e2, "the two jobs did not run at the same time"

    run_jobs(lambda j: job, 2, tmp_path, "one", JobSpec(max_parallel=1))
    spans = sorted(_intervals(tmp_path, "one", 2))
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:])), "max_parallel=1 overlapped"


def test_local_threads_one_per_job_when_several(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    job = sh('echo "threads $OMP_NUM_THREADS $MKL_NUM_THREADS"')
    run_jobs(lambda j: job, 1, tmp_path, "single")
    assert "threads 7 " in (tmp_path / "single.1.log").read_text()  # one job: left as the user set it
    run_jobs(lambda j: job, 2, tmp_path, "multi")
    assert all("threads 1 1" in lines(tmp_path / f"multi.{j}.log") for j in (1, 2))
    run_jobs(lambda j: job, 2, tmp_path, "two", JobSpec(num_threads=2))
    assert "threads 2 2" in lines(tmp_path / "two.1.log")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that nobody reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_to_the_stage_stops_its_jobs_and_what_they_started(tmp_path):
    # Each job starts a grandchild (as a wav.scp pipe would) and records both pids.
    script = 'sleep 120 & echo "$$ $!" > "$1.tmp"; mv "$1.tmp" "$1"; wait'
    stage = ("from speech.jobs import run_jobs\n"
             f"run_jobs(lambda j: ['sh', '-c', {script!r}, 'sh', f'{tmp_path}/pids.{{j}}'], 2, '{tmp_path}/log', 'slow')")
    proc = subprocess.Popen([sys.executable, "-c", stage], stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / f"pids.{j}" for j in (1, 2)]
    deadline = time.time() + 60
    while not all(f.exists() for f in pid_files):
        assert time.time() < deadline and proc.poll() is None, "the jobs did not start"
        time.sleep(0.05)
    pids = [int(p) for f in pid_files for p in f.read_text().split()]
    assert all(map(_alive, pids))

    try:
        proc.terminate()
        assert proc.wait(timeout=30) == 143
        assert proc.stderr.read().splitlines() == ["terminated (SIGTERM); stopping 2 running jobs"]
        deadline = time.time() + 10
        while any(map(_alive, pids)) and time.time() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "jobs or their children outlived the stage"
    finally:  # a failed run must not leave its sleeps behind
        for pid in filter(_alive, pids):
            os.kill(pid, signal.SIGKILL)


def test_bad_arguments(tmp_path):
    with pytest.raises(SpeechError, match="--nj must be at least 1"):
        run_jobs(lambda j: ["true"], 0, tmp_path, "x")
    with pytest.raises(SpeechError, match="--cmd must be 'local' or 'slurm'"):
        run_jobs(lambda j: ["true"], 1, tmp_path, "x", JobSpec(cmd="pbs"))


# --- --cmd strings and the Slurm config ------------------------------------------------------


def test_parse_cmd():
    assert parse_cmd("local") == JobSpec()
    spec = parse_cmd("slurm --gpu 1 --mem 4G --time 1:00:00 --num-threads 2 --max-jobs-run 3 --config my.conf")
    assert spec == JobSpec("slurm", max_parallel=3, num_threads=2, gpu=1, mem="4G", time="1:00:00",
                           slurm_conf="my.conf")
    for bad, error in [("", "empty"), ("slurm --gpu", "pairs"), ("slurm --queue q", "unknown option --queue"),
                       ("slurm --gpu one", "whole number"), ("pbs --gpu 1", "'local' or 'slurm'"),
                       ("local --num-threads 0", "num_threads=0")]:
        with pytest.raises(SpeechError, match=error):
            parse_cmd(bad)


def test_shipped_slurm_conf_maps_kaldi_options(monkeypatch):
    monkeypatch.delenv(CONF_ENV, raising=False)
    conf = SlurmConf.find()
    assert conf.sbatch_argv({"gpu": "0", "num_threads": "1"}) == ["sbatch", "--export=ALL", "--cpus-per-task=1"]
    argv = conf.sbatch_argv({"gpu": "2", "num_threads": "4", "mem": "4G", "time": "1:00:00"})
    assert argv[:2] == ["sbatch", "--export=ALL"]
    assert sorted(argv[2:]) == ["--cpus-per-task=4", "--gres=gpu:2", "--mem=4G", "--time=1:00:00"]


def test_slurm_conf_exact_values_defaults_and_errors(tmp_path):
    conf_path = tmp_path / "slurm.conf"
    conf_path.write_text(
        "command sbatch -p cpu  # every job\n"
        "\n"
        "default time=4:00:00\n"
        "option time=* --time $0\n"
        "option gpu=0\n"
        "option gpu=* -p gpu --gres=gpu:$0\n"
        "option num_threads=1\n"
        "option num_threads=* --cpus-per-task $0 --ntasks-per-node=1\n"
    )
    conf = SlurmConf.read(conf_path)
    defaults = conf.sbatch_argv({"gpu": "0", "num_threads": "1", "mem": None})
    assert defaults == ["sbatch", "-p", "cpu", "--time", "4:00:00"]
    assert conf.sbatch_argv({"gpu": "1", "num_threads": "8", "time": "10"}) == [
        "sbatch", "-p", "cpu", "-p", "gpu", "--gres=gpu:1", "--cpus-per-task", "8", "--ntasks-per-node=1",
        "--time", "10"]
    with pytest.raises(SpeechError, match=r"slurm\.conf: no rule for mem=1G; add a line 'option mem=\*"):
        conf.sbatch_argv({"mem": "1G"})

    for text, error in [("command sbatch\noption gpu\n", r"slurm\.conf:2: expected"),
                        ("command sbatch\ndefault gpu=* --x\n", r"slurm\.conf:2: expected"),
                        ("option gpu=0\n", "no 'command' line"), ("command 'sbatch\n", r"slurm\.conf:1: .*quot")]:
        conf_path.write_text(text)
        with pytest.raises(SpeechError, match=error):
            SlurmConf.read(conf_path)
    with pytest.raises(SpeechError, match="missing.conf: cannot read"):
        SlurmConf.read(tmp_path / "missing.conf")


def test_slurm_conf_from_config_else_environment_else_package(tmp_path, monkeypatch):
    monkeypatch.delenv(CONF_ENV, raising=False)
    packaged = SlurmConf.find().path.resolve()
    assert packaged == REPO / "speech" / "jobs" / "slurm.conf"
    # The recipes' conf/slurm.conf is that file, not a copy that could drift from it.
    assert (REPO / "conf" / "slurm.conf").resolve() == packaged

    (tmp_path / "site.conf").write_text("command sbatch -p site\n")
    (tmp_path / "cli.conf").write_text("command sbatch -p cli\n")
    monkeypatch.setenv(CONF_ENV, str(tmp_path / "site.conf"))
    assert SlurmConf.find().command == ("sbatch", "-p", "site")
    assert SlurmConf.find(str(tmp_path / "cli.conf")).command == ("sbatch", "-p", "cli")
    monkeypatch.setenv(CONF_ENV, str(tmp_path / "missing.conf"))
    with pytest.raises(SpeechError, match=r"missing\.conf: cannot read .*--config or \$SPEECH_SLURM_CONF"):
        run_jobs(lambda j: ["true"], 1, tmp_path, "x", JobSpec(cmd="slurm"))


@pytest.mark.timeout(120)
def test_installed_package_has_its_default_slurm_conf(tmp_path):
    # A plain (non-editable) install has no conf/ beside the package, so the default config
    # must come from the package. Built from a copy: pip builds in the source tree.
    src = tmp_path / "src"
    shutil.copytree(REPO / "speech", src / "speech", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, timeout=100)
    assert (site / "speech" / "jobs" / "slurm.conf").is_file() and not (site / "conf").exists()

    data = tmp_path / "data"
    data.mkdir()
    sf.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16")
    (data / "wav.scp").write_text(f"spk1-a {tmp_path / 'a.wav'}\n")
    (data / "utt2spk").write_text("spk1-a spk1\n")
    (data / "spk2utt").write_text("spk1 spk1-a\n")
    (tmp_path / "bin").mkdir()  # a PATH without sbatch: the stage gets as far as submitting
    env = {k: v for k, v in os.environ.items() if k != CONF_ENV}
    env.update(PYTHONPATH=str(site), PATH=str(tmp_path / "bin"))
    where = subprocess.run([sys.executable, "-c", "import speech; print(speech.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=100)
    assert where.stdout.strip() == str(site / "speech" / "__init__.py")  # not the editable install
    run = subprocess.run([sys.executable, "-m", "speech", "compute-fbank", str(data), "--cmd", "slurm", "--nj", "1"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=100)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.splitlines()[-1].startswith("speech compute-fbank: error: --cmd slurm: 'sbatch' not found")


def test_slurm_without_sbatch_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpeechError, match="'sbatch' not found; install Slurm"):
        run_jobs(lambda j: ["true"], 2, tmp_path, "x", JobSpec(cmd="slurm"))


# --- a real Slurm cluster -------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_slurm_array_logs_and_failed_tasks(slurm_cluster, tmp_path, monkeypatch):
    # Task 2 fails; task 3's output lacks its final newline; task 4's shell is killed, so its
    # log never gets an end line (no need to wait for a shared filesystem here).
    monkeypatch.setattr(speech.jobs.slurm, "LOG_SYNC_WAIT_S", 0.5)
    scripts = {1: 'echo "task 1 threads=$OMP_NUM_THREADS"', 2: 'echo "task 2"; exit 3', 3: "printf 'task 3'",
               4: 'echo "task 4"; kill -9 $PPID'}
    with pytest.raises(JobError) as info:
        run_jobs(lambda j: sh(scripts[j]), 4, tmp_path / "log", "arr", JobSpec(cmd="slurm"))
    message = str(info.value)
    assert "2 of 4 'arr' jobs failed" in message
    assert f"{tmp_path}/log/arr.2.log (code 3), {tmp_path}/log/arr.4.log (no end line: killed?)" in message
    assert "arr.1.log" not in message and "arr.3.log" not in message
    for j in (1, 2, 3, 4):
        log = tmp_path / "log" / f"arr.{j}.log"
        assert lines(log)[0] == "# " + shlex.join(sh(scripts[j]))
        assert re.match(r"# Started at .* Slurm job \d+_" + str(j) + "$", lines(log)[1])
        assert lines(log)[2].startswith(f"task {j}")
        if j != 4:
            assert end_code(log) == (3 if j == 2 else 0)
    assert "task 1 threads=1" in lines(tmp_path / "log" / "arr.1.log")
    assert "# Ended" not in (tmp_path / "log" / "arr.4.log").read_text()


@pytest.mark.timeout(60)
def test_slurm_options_reach_the_task_and_submit_errors_are_clear(slurm_cluster, tmp_path):
    spec = parse_cmd("slurm --gpu 1 --mem 100M --time 5 --num-threads 2")
    job = sh('echo "gpu=$CUDA_VISIBLE_DEVICES cpus=$SLURM_CPUS_PER_TASK mem=$SLURM_MEM_PER_NODE '
             'threads=$OMP_NUM_THREADS limit=$(squeue -h -j $SLURM_JOB_ID -o %l)"')
    run_jobs(lambda j: job, 1, tmp_path, "opts", spec)
    assert "gpu=0 cpus=2 mem=100 threads=2 limit=5:00" in lines(tmp_path / "opts.1.log")

    # A request the cluster cannot meet is refused at submission: a SpeechError quoting
    # sbatch, and the log of an earlier successful run is gone rather than passing for this one.
    stale = tmp_path / "opts.1.log"
    with pytest.raises(SpeechError, match="sbatch could not submit .*Requested node configuration") as info:
        run_jobs(lambda j: job, 1, tmp_path, "opts", JobSpec(cmd="slurm", gpu=5))
    assert not isinstance(info.value, JobError) and not stale.exists()
