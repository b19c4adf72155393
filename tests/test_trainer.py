"""The generic trainer: learning, best-model selection, checkpoints and exact resume."""

import random

import torch

from speech.train import Trainer, TrainerConfig

torch.set_num_threads(1)


class ShuffledBatches:
    """A tiny regression data set whose batch order depends on the epoch (like the sampler)."""

    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = list(range(64))
        random.Random(self.epoch).shuffle(order)
        for i in range(0, 64, 16):
            idx = order[i : i + 16]
            yield self.x[idx], self.y[idx]


def make_trainer(tmp_path, epochs, saved):
    torch.manual_seed(0)
    # dropout makes the result depend on the restored RNG state
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    data = ShuffledBatches()

    def loss_fn(m, batch):
        x, y = batch
        return ((m(x).squeeze(-1) - y) ** 2).sum(), len(y)

    def validate(m):
        return {"loss": ((m(data.x).squeeze(-1) - data.y) ** 2).mean().item()}

    cfg = TrainerConfig(epochs=epochs, lr=0.01, metric="loss", seed=3)
    trainer = Trainer(model, cfg, tmp_path, torch.device("cpu"), loss_fn, validate,
                      on_best=lambda m: saved.append({k: v.clone() for k, v in m.state_dict().items()}))
    return trainer, data


def test_training_reduces_loss_and_keeps_best(tmp_path):
    saved = []
    trainer, data = make_trainer(tmp_path, 6, saved)
    state = trainer.fit(data)
    losses = [h["dev_loss"] for h in state.history]
    assert losses[-1] < losses[0] / 2
    assert state.best == min(losses) and state.history[state.best_epoch - 1]["dev_loss"] == state.best
    assert len(saved) >= 2  # saved each time dev loss improved
    assert (tmp_path / "checkpoint.pt").is_file()
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    full, data = make_trainer(tmp_path / "full", 4, [])
    full.fit(data)

    first, data = make_trainer(tmp_path / "resumed", 2, [])
    first.fit(data)  # "killed" after epoch 2: only its checkpoint survives
    second, data = make_trainer(tmp_path / "resumed", 4, [])
    state = second.fit(data)
    assert state.epoch == 4 and [h["epoch"] for h in state.history] == [1, 2, 3, 4]
    for (name, a), b in zip(full.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_finished_run_is_not_trained_again(tmp_path):
    trainer, data = make_trainer(tmp_path, 2, [])
    trainer.fit(data)
    again, data = make_trainer(tmp_path, 2, [])
    before = {k: v.clone() for k, v in again.model.state_dict().items()}
    state = again.fit(data)
    assert state.epoch == 2 and len(state.history) == 2
    assert any(not torch.equal(before[k], v) for k, v in again.model.state_dict().items())  # loaded


def test_averaging_the_best_epochs(tmp_path):
    saved = []
    trainer, data = make_trainer(tmp_path, 6, saved)
    trainer.cfg.average_best = 3
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
