"""``python kill_after_updates.py N speech-args...``: run ``speech`` and SIGKILL the process
right after optimizer update N, as a pre-empted job dies (no cleanup, no exception)."""

import os
import signal
import sys

from speech.cli import main
from speech.train.trainer import Trainer

kill_at = int(sys.argv[1])
_update = Trainer._update


def _update_then_die(self):
    _update(self)
    if self.state.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


Trainer._update = _update_then_die
sys.exit(main(sys.argv[2:]))
