"""User-facing errors.

Every error a user can cause by what they pass in (a bad file, a wrong option, a broken
data directory) is raised as a :class:`SpeechError` whose message names the file (and line)
and says how to fix it. ``speech`` prints such errors as one line and exits non-zero,
without a traceback; anything else is a bug and keeps its traceback.
"""


class SpeechError(Exception):
    """An error in the user's input, with a message meant to be read by that user."""


class AudioError(SpeechError):
    """An audio file that cannot be read or is unusable (empty, truncated, not audio)."""


class DataDirError(SpeechError):
    """A Kaldi data directory with a missing, malformed or inconsistent file."""


class JobError(SpeechError):
    """One or more parallel jobs of a stage failed; the message names their logs."""


class Preempted(Exception):
    """A run that stopped on request (a batch system's signal) after writing a checkpoint: not
    a failure, the same command resumes it. ``speech`` exits with :data:`PREEMPTED_EXIT`, which
    the Slurm job script of :mod:`speech.jobs.launch` takes as "requeue me"."""


# EX_TEMPFAIL of sysexits.h: "temporary failure, try again later".
PREEMPTED_EXIT = 75
