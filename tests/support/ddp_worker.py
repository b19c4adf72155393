"""Under torchrun: train the toy model on this rank's shard; rank 0 saves the final weights
to EXP_DIR/final.pt. ``python ddp_worker.py EXP_DIR EPOCHS``."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.toy

from speech.train.distributed import init_distributed, leave_distributed  # noqa: E402
from support.toy import make_trainer  # noqa: E402

torch.set_num_threads(1)
exp_dir, epochs = sys.argv[1], int(sys.argv[2])
dist = init_distributed(torch.device("cpu"))
trainer, data = make_trainer(exp_dir, epochs, dropout=0.0, dist=dist)
trainer.fit(data)
params = [p.detach().clone() for p in trainer.model.parameters()]
gathered = [None] * dist.world_size
torch.distributed.all_gather_object(gathered, params)
if dist.is_main:
    torch.save({"params": params, "all_ranks": gathered}, f"{exp_dir}/final.pt")
leave_distributed(dist)
