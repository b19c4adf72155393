"""One heavy command as one job (``speech launch``): locally, as torchrun ranks, on a real
Slurm as srun tasks; stop signals that checkpoint, and the requeue that resumes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from speech.errors import JobError, Preempted, SpeechError
from speech.jobs.launch import job_script, launch
from support.toy import make_trainer

torch.set_num_threads(1)
WORKER = Path(__file__).resolve().parent / "support" / "ddp_worker.py"


def worker(exp: Path, epochs: int, pause: float = 0.0) -> list[str]:
    return [sys.executable, str(WORKER), str(exp), str(epochs), str(pause)]


def uninterrupted(tmp_path: Path, epochs: int) -> list[torch.Tensor]:
    trainer, data = make_trainer(tmp_path / "reference", epochs, dropout=0.0)
    trainer.fit(data)
    return [p.detach() for p in trainer.model.parameters()]


def final(exp: Path) -> dict:
    return torch.load(exp / "final.pt", weights_only=True)


# --- the trainer's side: a stop signal checkpoints, and the run resumes exactly -----------------


def test_stop_signal_mid_epoch_checkpoints_and_the_rerun_resumes_exactly(tmp_path):
    reference = uninterrupted(tmp_path, 3)
    trainer, data = make_trainer(tmp_path / "stopped", 3, dropout=0.0)
    loss_fn = trainer.loss_fn

    def signal_at_update_6(m, batch):  # epoch 2, batch 2 (4 batches an epoch)
        if trainer.state.step == 5:
            os.kill(os.getpid(), signal.SIGUSR1)
        return loss_fn(m, batch)

    trainer.loss_fn = signal_at_update_6
    previous = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Preempted, match=r"after update 6 \(epoch 2, batch 2\)"):
        trainer.fit(data)
    assert signal.getsignal(signal.SIGUSR1) == previous  # the handler lives only inside fit()
    state = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["state"]
    assert (state["step"], state["epoch"], state["epoch_batches"]) == (6, 1, 2)

    resumed, data = make_trainer(tmp_path / "stopped", 3, dropout=0.0)
    resumed.fit(data)
    assert all(torch.equal(a, b) for a, b in zip(reference, resumed.model.parameters()))


def test_a_signal_outside_training_keeps_its_default_meaning(tmp_path):
    # SIGTERM to an idle `speech` process still ends it at once, with 143.
    proc = subprocess.Popen([sys.executable, "-c", "import speech.train.trainer, time; time.sleep(30)"])
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


# --- local --------------------------------------------------------------------------------------


def test_local_launch_logs_like_a_job_and_copies_output_to_the_console(tmp_path, capfd):
    log = tmp_path / "log" / "train.log"
    launch([sys.executable, "-c", "print('hello from the job')"], log)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("# ") and "hello from the job" in lines[0]
    assert lines[1].startswith("# Started at ") and lines[2] == "hello from the job"
    assert lines[-1].startswith("# Ended (code 0) at ")
    assert "hello from the job" in capfd.readouterr().out


def test_failures_and_bad_options_are_one_line_errors(tmp_path):
    log = tmp_path / "fail.log"
    with pytest.raises(JobError, match=rf"'fail' failed \(code 3\); see {log}"):
        launch([sys.executable, "-c", "import sys; sys.exit(3)"], log)
    assert log.read_text().splitlines()[-1].startswith("# Ended (code 3)")
    with pytest.raises(JobError, match=r"code 127"):
        launch(["no-such-program-here"], tmp_path / "missing.log")
    for kwargs, error in [({"num_nodes": 2}, "needs a cluster"), ({"ngpu": -1}, "out of range"),
                          ({"cmd": "pbs"}, "'local' or 'slurm'")]:
        with pytest.raises(SpeechError, match=error):
            launch(["true"], tmp_path / "x.log", **kwargs)
    with pytest.raises(SpeechError, match="no command to launch"):
        launch([], tmp_path / "x.log")


def test_cli_takes_the_command_after_two_dashes(tmp_path):
    run = subprocess.run([sys.executable, "-m", "speech", "launch", "--log", str(tmp_path / "a.log"), "--",
                          sys.executable, "-c", "import sys; print(sys.argv[1:])", "--x", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "['--x', '1']" in run.stdout
    run = subprocess.run([sys.executable, "-m", "speech", "launch", "--log", str(tmp_path / "b.log"), "--",
                          sys.executable, "-c", "raise SystemExit(4)"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.splitlines()[-1].startswith("speech launch: error: 'b' failed (code 4)")


@pytest.mark.slow
def test_local_two_processes_train_data_parallel(tmp_path):
    launch(worker(tmp_path / "ddp", 3), tmp_path / "train.log", nproc=2)
    rank0, rank1 = final(tmp_path / "ddp")["all_ranks"]
    assert all(torch.equal(a, b) for a, b in zip(rank0, rank1))
    for a, b in zip(uninterrupted(tmp_path, 3), rank0):
        assert torch.allclose(a, b, atol=1e-5)


def test_job_script_passes_signals_on_and_requeues_only_after_a_checkpointed_stop(tmp_path):
    script = job_script(["speech", "train-asr", "--x", "a b"], tmp_path / "t.log", tasks=2, num_threads=3)
    assert "srun --kill-on-bad-exit=1 speech train-asr --x 'a b' &" in script
    assert "trap 'got=USR1; kill -USR1 $child" in script and "OMP_NUM_THREADS=3" in script
    assert 'if [ $code -eq 75 ] && [ "$got" != TERM ]' in script
    assert "srun" not in job_script(["speech", "x"], tmp_path / "t.log", tasks=1, num_threads=1)


# --- a real Slurm cluster -------------------------------------------------------------------------


def _squeue(job_name: str) -> list[tuple[str, str, str]]:
    out = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i %T %r"], capture_output=True, text=True).stdout
    return [tuple(line.split()) for line in out.splitlines()]


@pytest.mark.timeout(180)
def test_slurm_two_srun_tasks_keep_identical_parameters(slurm_cluster, tmp_path):
    # --ngpu 2 on the cluster's fake GPUs: two tasks, ranks from SLURM_PROCID, gloo on CPU
    launch(worker(tmp_path / "ddp", 3), tmp_path / "log" / "ddp.log", cmd="slurm", ngpu=2)
    text = (tmp_path / "log" / "ddp.log").read_text()
    assert "restart 0" in text and text.splitlines()[-1].startswith("# Ended (code 0)")
    rank0, rank1 = final(tmp_path / "ddp")["all_ranks"]
    assert all(torch.equal(a, b) for a, b in zip(rank0, rank1))
    for a, b in zip(uninterrupted(tmp_path, 3), rank0):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.timeout(240)
def test_slurm_usr1_mid_epoch_checkpoints_requeues_and_ends_as_an_uninterrupted_run(slurm_cluster, tmp_path):
    exp, log, name = tmp_path / "exp", tmp_path / "log" / "train.log", f"preempt{os.getpid()}"
    errors: list[BaseException] = []

    def run():
        try:
            launch(worker(exp, 5, pause=0.3), log, cmd="slurm", name=name)
        except BaseException as e:  # noqa: BLE001 (reported by the test below)
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not (exp / "checkpoint.pt").exists():  # epoch 1 is over: the signal lands in epoch 2
        assert time.monotonic() < deadline and thread.is_alive(), log.read_text() if log.exists() else "no log"
        time.sleep(0.2)
    job = _squeue(name)[0][0]
    # As Slurm's --signal=B:USR1@120 does before the time limit: the batch shell only.
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    # Slurm holds a requeued job ~2 min before it may start again; once the stopped run has
    # left the node (a release sooner is refused: "Job credential revoked"), release it now.
    while not any(state == "PENDING" for _, state, _ in _squeue(name)):
        assert time.monotonic() < deadline and thread.is_alive(), log.read_text()
        time.sleep(0.2)
    time.sleep(3)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
    thread.join(timeout=150)
    assert not thread.is_alive() and not errors, errors or log.read_text()

    text = log.read_text()
    assert "stopped by a signal after update" in text and "(epoch 2, batch" in text
    assert "requeueing" in text and "restart 1" in text
    assert text.splitlines()[-1].startswith("# Ended (code 0)")
    for a, b in zip(uninterrupted(tmp_path, 5), final(exp)["params"]):
        assert torch.equal(a, b)


@pytest.mark.timeout(120)
def test_slurm_failure_names_the_log_and_the_code(slurm_cluster, tmp_path):
    log = tmp_path / "log" / "bad.log"
    with pytest.raises(JobError, match=rf"'bad' failed \(code 3\); see {log}"):
        launch(["bash", "-c", "echo going wrong; exit 3"], log, cmd="slurm")
    text = log.read_text()
    assert "going wrong" in text and text.splitlines()[-1].startswith("# Ended (code 3)")


def test_slurm_launch_asks_for_nodes_tasks_per_node_and_gpus(monkeypatch, tmp_path):
    # This machine's Slurm has one node; what a two-node job asks of sbatch is checked here,
    # and the srun tasks' ranks across nodes by test_trainer's SLURM_* mapping.
    import speech.jobs.launch as launch_module

    submitted = []
    monkeypatch.setattr(launch_module, "submit_and_wait", lambda argv, script: submitted.append(argv))
    monkeypatch.setattr(launch_module, "wait_for_logs", lambda logs: [0])
    launch(["speech", "train-asr"], tmp_path / "log" / "t.log", cmd="slurm --mem 8G --gpu 1", ngpu=4, num_nodes=2)
    (argv,) = submitted
    assert {"--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4", "--mem=8G", "--requeue",
            "--signal=B:USR1@120"} <= set(argv), argv
    assert "srun --kill-on-bad-exit=1 speech train-asr &" in Path(argv[-1]).read_text()
