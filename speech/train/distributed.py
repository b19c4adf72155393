"""Process groups for data-parallel training, launched by ``torchrun`` or by Slurm's ``srun``.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT itself. Under
``srun`` every task is started by Slurm and only knows SLURM_PROCID / SLURM_NTASKS /
SLURM_LOCALID, so those are mapped to torch's names here; the rendezvous host is the first
node of the job and the port is derived from the job id, so two jobs sharing a node do not
collide. A plain ``python``/``speech`` run is a world of one and needs no process group.

Backend: NCCL when training on CUDA, gloo on CPU.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from speech.errors import SpeechError

log = logging.getLogger("speech.train")

_PORT_BASE, _PORT_RANGE = 20000, 20000


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, models and logs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_from_slurm(environ: dict[str, str]) -> dict[str, str]:
    """torch.distributed variables for an ``srun`` task (empty when not under srun or when
    torchrun's variables are already set)."""
    if "RANK" in environ or "SLURM_PROCID" not in environ or "SLURM_NTASKS" not in environ:
        return {}
    env = {
        "RANK": environ["SLURM_PROCID"],
        "WORLD_SIZE": environ["SLURM_NTASKS"],
        "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
    }
    if "MASTER_ADDR" not in environ:
        env["MASTER_ADDR"] = _first_host(environ.get("SLURM_JOB_NODELIST", environ.get("SLURM_NODELIST", "")))
    if "MASTER_PORT" not in environ:
        job = int(environ.get("SLURM_JOB_ID", environ.get("SLURM_JOBID", "0")))
        env["MASTER_PORT"] = str(_PORT_BASE + job % _PORT_RANGE)
    return env


def _first_host(nodelist: str) -> str:
    """First host of a Slurm node list such as ``gpu[03-05,07]`` (scontrol expands it)."""
    if not nodelist:
        return "127.0.0.1"
    if "[" not in nodelist and "," not in nodelist:
        return nodelist
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SpeechError(f"cannot expand SLURM_JOB_NODELIST '{nodelist}' with scontrol ({e}); "
                          "set MASTER_ADDR to the first node's host name") from None
    return out.stdout.split()[0]


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by the environment (torchrun or srun); a world of
    one when there is none. Selects this rank's GPU for ``cuda`` devices."""
    os.environ.update(env_from_slurm(dict(os.environ)))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend, rank=info.rank, world_size=world_size,
                                timeout=datetime.timedelta(minutes=30))
        log.info("rank %d of %d (local rank %d), backend %s", info.rank, world_size, info.local_rank, backend)
    return info


def leave_distributed(info: DistInfo) -> None:
    """Leave the process group at the end of a run, on every rank. The barrier first, so that
    no rank tears its gloo/NCCL threads down while a peer is still inside a collective or
    writing the model: a rank that exits with the group alive, or mid-exchange, aborts with
    "terminate called without an active exception"."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """Each rank of a multi-GPU run takes the GPU of its local rank."""
    if device.type == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return device


def broadcast(obj: Any, info: DistInfo) -> Any:
    """rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Whether ``flag`` holds on every rank (so that all ranks take the same branch)."""
    if not info.enabled:
        return flag
    t = torch.tensor([0 if flag else 1], device=device)
    dist.all_reduce(t)
    return int(t.item()) == 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
