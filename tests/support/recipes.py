"""Run a recipe's run.sh in a scratch copy of the repository layout (symlinks to the real
scripts), so that its data/, exp/ and corpus/ never land in the checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from speech.text.rdata import R_LIBRARY
from speech.text.sentences import FORTUNE_DIR

REPO = Path(__file__).resolve().parents[2]
# the Debian text packages that speech.text.sentences reads
HAVE_TEXTS = (R_LIBRARY / "stringr" / "data" / "Rdata.rdx").is_file() and \
    (R_LIBRARY / "janeaustenr" / "data" / "Rdata.rdx").is_file() and (FORTUNE_DIR / "wisdom").is_file()
needs_texts = pytest.mark.skipif(not HAVE_TEXTS, reason="text packages missing: tools/install_system_packages.sh")


def write_tiny_asr_config(path: Path, epochs: int) -> Path:
    """A BLSTM-CTC config small enough for a recipe test to train in a minute or two."""
    path.write_text("model: {subsample: 3, hidden_size: 48, num_layers: 2, dropout: 0.0}\n"
                    f"trainer: {{epochs: {epochs}, lr: 0.003, metric: cer}}\n"
                    "cmvn: utterance\nmax_frames: 8000\nnum_threads: 1\n")
    return path


def make_scratch_recipe(root: Path, name: str) -> Path:
    recipe = root / "recipes" / name
    recipe.mkdir(parents=True)
    for entry in ("run.sh", "path.sh", "local"):
        (recipe / entry).symlink_to(REPO / "recipes" / name / entry)
    for entry in ("tools", "conf"):
        (root / entry).symlink_to(REPO / entry)
    return recipe


def run_recipe(recipe: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", str(recipe / "run.sh"), *args], cwd=recipe, env=env,
                          capture_output=True, text=True, timeout=timeout)


def wer_of(decode_dir: Path) -> float:
    """The WER of a scored decode dir, after checking its first line is Kaldi's format."""
    line = (decode_dir / "wer").read_text().splitlines()[0]
    assert re.fullmatch(r"%WER \d+\.\d\d \[ \d+ / \d+, \d+ ins, \d+ del, \d+ sub \]", line), line
    return float(line.split()[1])
