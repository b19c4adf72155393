"""The environment that caps a job's OpenMP/MKL/OpenBLAS threads: several CPU-heavy jobs on
one machine slow each other down badly when each uses every core (measured: 15x on a BLSTM
step), and ``srun``/``sbatch`` set none of these."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(num_threads: int) -> dict[str, str]:
    """{variable: num_threads} for each of THREAD_VARIABLES."""
    return {v: str(num_threads) for v in THREAD_VARIABLES}


def thread_exports(num_threads: int) -> str:
    """The same as a shell ``export`` line."""
    return "export " + " ".join(f"{k}={v}" for k, v in thread_env(num_threads).items())
