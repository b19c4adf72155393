"""``python -m speech``: the ``speech`` command, e.g. under ``torchrun -m speech train-asr ...``."""

import sys

from speech.cli import main

sys.exit(main())
