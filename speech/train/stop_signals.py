"""Stop requests by signal, for training jobs that a batch system ends before they finish.

Slurm warns a job before its time limit with the signal asked for by ``sbatch
--signal=B:USR1@120`` (SIGUSR1 here), and ends pre-empted or cancelled jobs with SIGTERM,
then SIGKILL ``KillWait`` seconds later. Either signal only sets a flag: the trainer looks
at it after each update, writes its checkpoint there (a point it resumes from exactly) and
ends with :class:`speech.errors.Preempted`. Stopping inside an update instead would lose it,
and dying at once would lose everything since the last periodic checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

log = logging.getLogger("speech.train")

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StopRequest:
    """The first stop signal received while :meth:`listening`, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _note(self, signum: int, frame: object) -> None:
        if self.signum is None:
            log.info("received %s: stopping after this update with a checkpoint", signal.Signals(signum).name)
        self.signum = signum

    @contextlib.contextmanager
    def listening(self) -> Iterator[StopRequest]:
        """Catch STOP_SIGNALS while inside, restoring the previous handlers at the end. Python
        takes signals in the main thread only; elsewhere (a test's thread) nothing is caught."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._note) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
