"""Under torchrun or srun (or alone): train the toy model on this rank's shard; rank 0 saves
the final weights of every rank to EXP_DIR/final.pt.

    python ddp_worker.py EXP_DIR EPOCHS [SECONDS_PER_BATCH]

SECONDS_PER_BATCH slows each batch down so that a test can signal the run mid-epoch. Exits
as ``speech`` does: 75 after a stop signal (checkpoint written), 1 on a SpeechError."""

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.toy

from speech.cli import run_main  # noqa: E402
from speech.errors import Preempted  # noqa: E402
from speech.train.distributed import gather, init_distributed, leave_distributed  # noqa: E402
from support.toy import make_trainer  # noqa: E402


def main(argv):
    torch.set_num_threads(1)
    exp_dir, epochs = argv[0], int(argv[1])
    pause = float(argv[2]) if len(argv) > 2 else 0.0
    dist = init_distributed(torch.device("cpu"))
    trainer, data = make_trainer(exp_dir, epochs, dropout=0.0, dist=dist)
    loss_fn = trainer.loss_fn

    def slow_loss(m, batch):
        time.sleep(pause)
        return loss_fn(m, batch)

    trainer.loss_fn = slow_loss
    try:
        trainer.fit(data)
    except Preempted:
        leave_distributed(dist)
        raise
    params = [p.detach().clone() for p in trainer.model.parameters()]
    gathered = gather(params, dist)
    if dist.is_main:
        torch.save({"params": params, "all_ranks": gathered}, f"{exp_dir}/final.pt")
    leave_distributed(dist)


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:], "ddp_worker"))
