"""The generic trainer: learning, best-model selection, exact resume (at epoch ends and
mid-epoch), accumulation, schedules, early stopping, skipped batches, data parallel."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speech.errors import SpeechError
from speech.train.distributed import env_from_slurm
from speech.train.schedule import LrSchedule
from support.ports import free_port
from support.toy import ToyBatch, make_trainer

torch.set_num_threads(1)
SUPPORT = Path(__file__).resolve().parent / "support"


def params_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_training_reduces_loss_and_keeps_best(tmp_path):
    saved = []
    trainer, data = make_trainer(tmp_path, 6, saved)
    state = trainer.fit(data)
    losses = [h["dev_loss"] for h in state.history]
    assert losses[-1] < losses[0] / 2
    assert state.best == min(losses) and state.history[state.best_epoch - 1]["dev_loss"] == state.best
    assert len(saved) >= 2  # saved each time dev loss improved
    assert state.step == 6 * 4
    assert (tmp_path / "checkpoint.pt").is_file()
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_at_an_epoch_end_is_bit_identical(tmp_path):
    full, data = make_trainer(tmp_path / "full", 4)
    full.fit(data)

    first, data = make_trainer(tmp_path / "resumed", 2)
    first.fit(data)  # "killed" after epoch 2: only its checkpoint survives
    second, data = make_trainer(tmp_path / "resumed", 4)
    state = second.fit(data)
    assert state.epoch == 4 and [h["epoch"] for h in state.history] == [1, 2, 3, 4]
    assert params_equal(full.model, second.model)
    assert [h["dev_loss"] for h in state.history] == [h["dev_loss"] for h in full.state.history]
    assert 0 < first.state.seconds < state.seconds  # the training time adds up across the runs


class Crash(Exception):
    pass


def test_resume_mid_epoch_is_bit_identical(tmp_path):
    full, data = make_trainer(tmp_path / "full", 3, checkpoint_interval=1)
    full.fit(data)

    crashing, data = make_trainer(tmp_path / "resumed", 3, checkpoint_interval=3)
    loss_fn = crashing.loss_fn

    def crash_in_epoch_2(m, batch):
        if crashing.state.step == 6:  # update 6 = epoch 2 batch 2; last checkpoint at update 3
            raise Crash
        return loss_fn(m, batch)

    crashing.loss_fn = crash_in_epoch_2
    with pytest.raises(Crash):
        crashing.fit(data)
    ckpt = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["step"] == 6 and ckpt["state"]["epoch"] == 1 and ckpt["state"]["epoch_batches"] == 2

    resumed, data = make_trainer(tmp_path / "resumed", 3, checkpoint_interval=3)
    state = resumed.fit(data)
    assert state.step == full.state.step == 12
    assert params_equal(full.model, resumed.model)
    assert [h["train_loss"] for h in state.history] == [h["train_loss"] for h in full.state.history]


def test_sigkilled_train_asr_resumes_to_identical_parameters(tmp_path):
    """The real stage (DataLoader, bucketed sampler, SpecAugment, LSTM dropout) killed with
    SIGKILL mid-epoch, then re-run, ends exactly where an uninterrupted run does."""
    from support.feature_dirs import make_asr_dirs

    dirs = make_asr_dirs(tmp_path / "data")
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {subsample: 2, hidden_size: 16, num_layers: 2, dropout: 0.3}\n"
                      "trainer: {epochs: 2, lr: 0.003, checkpoint_interval: 2, tensorboard: false}\n"
                      "cmvn: utterance\nmax_frames: 800\nnum_threads: 1\n"
                      "augment: {freq_warp: 0.1, time_stretch: 0.1, freq_masks: 1, freq_mask_width: 3, "
                      "time_masks: 1}\n")

    def train(exp, kill_at=None):
        args = ["train-asr", "--train-dir", str(dirs["train"]), "--dev-dir", str(dirs["dev"]),
                "--lang-dir", str(dirs["lang"]), "--exp-dir", str(exp), "--config", str(config), "--device", "cpu"]
        cmd = [sys.executable, str(SUPPORT / "kill_after_updates.py"), str(kill_at)] if kill_at else \
            [sys.executable, "-m", "speech"]
        return subprocess.run(cmd + args, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert train(tmp_path / "full").returncode == 0
    per_epoch = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["state"]["step"] // 2
    assert per_epoch >= 6
    killed = train(tmp_path / "resumed", kill_at=per_epoch + 3)  # epoch 2, one update after a checkpoint
    assert killed.returncode == -9
    state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["state"]
    assert (state["epoch"], state["step"]) == (1, per_epoch + 2)
    resumed = train(tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "continuing after batch" in resumed.stderr

    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert a["state"]["history"] == [dict(h, train_seconds=a["state"]["history"][i]["train_seconds"])
                                     for i, h in enumerate(b["state"]["history"])]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (
        tmp_path / "resumed" / "model.safetensors").read_bytes()


def test_finished_run_is_not_trained_again(tmp_path):
    trainer, data = make_trainer(tmp_path, 2)
    trainer.fit(data)
    again, data = make_trainer(tmp_path, 2)
    before = {k: v.clone() for k, v in again.model.state_dict().items()}
    state = again.fit(data)
    assert state.epoch == 2 and len(state.history) == 2
    assert any(not torch.equal(before[k], v) for k, v in again.model.state_dict().items())  # loaded


def test_averaging_the_best_epochs(tmp_path):
    saved = []
    trainer, data = make_trainer(tmp_path, 6, saved, average_best=3)
    state = trainer.fit(data)
    kept = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "snapshots").glob("epoch_*.pt"))
    ranked = sorted(state.history, key=lambda h: h["dev_loss"])[:3]
    assert kept == sorted(h["epoch"] for h in ranked) == state.averaged["epochs"]
    snapshots = [torch.load(tmp_path / "snapshots" / f"epoch_{e}.pt", weights_only=True) for e in kept]
    mean = {k: sum(s[k] for s in snapshots) / 3 for k in snapshots[0]}
    if state.averaged["dev_loss"] <= min(h["dev_loss"] for h in state.history):
        assert all(torch.allclose(saved[-1][k], mean[k], atol=1e-6) for k in mean)  # averaged model saved
        assert state.best == state.averaged["dev_loss"]
    else:
        assert not any(torch.allclose(saved[-1][k], mean[k]) for k in mean if mean[k].numel() > 1)
    # the checkpoint still holds the last epoch, so a longer run continues from there
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(ckpt["model"][k], v) for k, v in trainer.model.state_dict().items())


def test_gradient_accumulation_equals_one_large_batch(tmp_path):
    """2 accumulated batches of 16 = 1 batch of 32 (per-item mean loss, no dropout)."""
    accumulated, data = make_trainer(tmp_path / "a", 2, dropout=0.0, accum_grad=2)
    accumulated.fit(data)
    assert accumulated.state.step == 2 * 2

    large, data = make_trainer(tmp_path / "b", 2, dropout=0.0)
    inner = type(data).__iter__

    def two_at_a_time(self):
        batches = list(inner(self))
        for a, b in zip(batches[::2], batches[1::2]):
            yield ToyBatch(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))

    type(data).__iter__ = two_at_a_time
    try:
        large.fit(data)
    finally:
        type(data).__iter__ = inner
    assert large.state.step == 4
    for a, b in zip(accumulated.model.parameters(), large.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_noam_and_warmup_schedules():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    noam = LrSchedule(opt, 1e-3, "noam", warmup_steps=100)
    assert noam.lr_at(50) == pytest.approx(0.5e-3)
    assert noam.lr_at(100) == pytest.approx(1e-3)
    assert noam.lr_at(400) == pytest.approx(0.5e-3)
    plateau = LrSchedule(opt, 1e-3, "plateau", warmup_steps=10, factor=0.5, patience=1)
    assert plateau.lr_at(5) == pytest.approx(0.5e-3) and plateau.lr_at(20) == pytest.approx(1e-3)
    for metric in (3.0, 2.0, 2.5, 2.1):  # two epochs without improvement > patience 1
        plateau.epoch_end(metric)
    assert plateau.lr_at(20) == pytest.approx(0.5e-3)
    restored = LrSchedule(opt, 1e-3, "plateau", warmup_steps=10)
    restored.load_state_dict(plateau.state_dict())
    assert restored.lr_at(20) == plateau.lr_at(20)
    with pytest.raises(ValueError, match="warmup_steps"):
        LrSchedule(opt, 1e-3, "noam")


def test_trainer_applies_warmup(tmp_path):
    trainer, data = make_trainer(tmp_path, 1, warmup_steps=8, log_interval=1)
    seen = []
    loss_fn = trainer.loss_fn

    def record(m, batch):
        seen.append(trainer.schedule.lr)
        return loss_fn(m, batch)

    trainer.loss_fn = record
    trainer.fit(data)
    # batch k is computed for update k, whose lr is k/8 of the peak
    assert seen == pytest.approx([0.01 * k / 8 for k in (1, 2, 3, 4)])


def test_early_stopping(tmp_path):
    trainer, data = make_trainer(tmp_path, 30, early_stop_patience=2)
    values = iter([3.0, 2.0, 2.5, 2.4, 1.0, 1.0])
    trainer.validate_fn = lambda m: {"loss": next(values)}
    state = trainer.fit(data)
    assert state.stopped_early and state.epoch == 4 and state.best_epoch == 2
    again, data = make_trainer(tmp_path, 30, early_stop_patience=2)
    assert again.fit(data).epoch == 4  # a stopped run stays stopped when re-run


def test_nonfinite_batches_are_skipped_and_counted(tmp_path):
    trainer, data = make_trainer(tmp_path, 2)
    data.poison = {(1, 1), (2, 3)}
    before = [p.detach().clone() for p in trainer.model.parameters()]
    state = trainer.fit(data)
    assert state.skipped_nonfinite == 2 and state.step == 2 * 4 - 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert all(math.isfinite(h["train_loss"]) for h in state.history)


def test_too_many_nonfinite_batches_in_a_row_stop_the_run(tmp_path):
    trainer, data = make_trainer(tmp_path, 2, max_bad_batches=3)
    data.poison = {(1, b) for b in range(4)}
    with pytest.raises(SpeechError, match="3 batches in a row gave a non-finite loss"):
        trainer.fit(data)


def test_out_of_memory_batch_is_skipped(tmp_path, caplog):
    trainer, data = make_trainer(tmp_path, 1)
    loss_fn, calls = trainer.loss_fn, []

    def oom_on_second(m, batch):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return loss_fn(m, batch)

    trainer.loss_fn = oom_on_second
    state = trainer.fit(data)
    assert state.skipped_oom == 1 and state.step == 3
    assert "out of memory with a batch of 16 items" in caplog.text


def test_srun_environment_maps_to_torch_distributed():
    env = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123456",
           "SLURM_JOB_NODELIST": "node7"}
    assert env_from_slurm(env) == {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node7",
                                   "MASTER_PORT": str(20000 + 123456 % 20000)}
    assert env_from_slurm({**env, "RANK": "0"}) == {}  # torchrun inside a Slurm job wins
    assert env_from_slurm({}) == {}


def test_two_rank_torchrun_matches_one_process_with_the_same_global_batch(tmp_path):
    worker = SUPPORT / "ddp_worker.py"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
         str(worker), str(tmp_path / "ddp"), "3"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)
    rank0, rank1 = result["all_ranks"]
    assert all(torch.equal(a, b) for a, b in zip(rank0, rank1))  # ranks stayed identical

    single, data = make_trainer(tmp_path / "single", 3, dropout=0.0)
    single.fit(data)
    for a, b in zip(single.model.parameters(), result["params"]):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    assert not (tmp_path / "ddp" / ".checkpoint.pt.tmp").exists()
