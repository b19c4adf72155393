"""Run the N jobs of a stage, locally or as a Slurm array, one log per job.

This package knows nothing about speech: a stage hands it the command of job ``J`` and
where its log goes, in the way Kaldi's ``run.pl`` / ``slurm.pl`` do.
"""

from speech.jobs.runner import JobSpec, parse_cmd, python_module_argv, run_jobs

__all__ = ["JobSpec", "parse_cmd", "python_module_argv", "run_jobs"]
