"""Fixtures shared by test modules: a real one-node Slurm cluster (tools/local_slurm.sh),
module-scoped, skipped when slurm-wlm and munge are not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node cluster with 4 CPUs and 2 fake GPUs; SLURM_CONF points at it meanwhile."""
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in ("sbatch", "slurmctld", "slurmd", "munged") if shutil.which(t, path=search) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install -y --no-install-recommends slurm-wlm munge)")
    cluster = tmp_path_factory.mktemp("slurm")
    tool = [str(REPO / "tools" / "local_slurm.sh")]
    started = subprocess.run([*tool, "start", str(cluster), "4", "2"], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, f"local_slurm.sh start failed: {started.stderr}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(cluster / "slurm.conf"))
            yield cluster
    finally:
        subprocess.run([*tool, "stop", str(cluster)], capture_output=True, timeout=60)
