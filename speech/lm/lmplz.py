"""KenLM's ``lmplz`` as the estimator of ``speech train-lm``: finding the program, running it.

Where lmplz is looked for: ``$SPEECH_LMPLZ`` (when set, nowhere else), else
``<repo>/tools/kenlm/bin/lmplz`` (built by ``tools/install_kenlm.sh``), else ``lmplz`` on
the PATH.

How its model compares with :mod:`speech.lm.ngram`: both are interpolated Kneser-Ney with
the same adjusted (continuation) counts and unigrams interpolated with the uniform
distribution (lmplz's default ``--interpolate_unigrams``), but lmplz is *modified* KN:
three discounts per order, for adjusted counts 1, 2 and 3+, from the count-of-counts
n1..n4 (Chen & Goodman), where ngram.py subtracts one D = n1 / (n1 + 2 n2) per order.
Orders whose closed-form discounts fail (no singletons or doubletons: tiny or artificial
text) get lmplz's fallback discounts 0.5, 1, 1.5 (``--discount_fallback``, always passed).

Pruning: ``--prune`` of train-lm gives thresholds for orders 2, 3, ...; lmplz's list starts
at unigrams (which it never prunes), so it gets ``--prune 0 T2 T3 ...``. Both drop n-grams
whose raw count is at most the threshold, and pad the list with its last value.

lmplz refuses text that contains ``<s>``, ``</s>`` or ``<unk>``; its ARPA gives ``<s>`` the
log probability 0 where ngram.py writes -99 (neither is ever used: ``<s>`` is not predicted).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from speech.errors import SpeechError
from speech.fileio import atomic_write

log = logging.getLogger("speech.lmplz")

ENV = "SPEECH_LMPLZ"
REPO_LMPLZ = Path(__file__).resolve().parents[2] / "tools" / "kenlm" / "bin" / "lmplz"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_lmplz() -> tuple[Path | None, str]:
    """(the lmplz program or None, where it was looked for: for messages)."""
    env = os.environ.get(ENV)
    if env:
        path = Path(env)
        return (path if _executable(path) else None), f"${ENV}={env}"
    if _executable(REPO_LMPLZ):
        return REPO_LMPLZ, str(REPO_LMPLZ)
    found = shutil.which("lmplz")
    return (Path(found) if found else None), f"{REPO_LMPLZ} (tools/install_kenlm.sh builds it) or lmplz on the PATH"


def _tail(text: str, lines: int = 2) -> str:
    """lmplz's last words, without the C++ source locations of its exceptions."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    told = [line for line in kept if not re.match(r"\S+\.(cc|hh):\d+ in ", line)] or kept
    return " | ".join(told[-lines:]) or "no message"


def run_lmplz(lmplz: Path, sentences: Iterable[Sequence[str]], arpa: str | os.PathLike, order: int,
              prune: Sequence[int] = (), memory: str = "1G", source: str = "the text") -> int:
    """Estimate ``arpa`` (written atomically) from word sequences fed to lmplz's stdin.

    ``prune`` holds the thresholds of orders 2..order (as :func:`speech.lm.ngram.prune_thresholds`
    returns them); ``memory`` is lmplz's sorting memory (``-S``: ``1G``, ``20%``). Returns the
    number of sentences. A failure raises SpeechError naming ``source`` with lmplz's last words.
    """
    with tempfile.TemporaryDirectory(prefix="speech-lmplz-") as tmp:
        argv = [str(lmplz), "-o", str(order), "--discount_fallback", "-S", memory, "-T", tmp + "/"]
        if any(prune):
            argv += ["--prune", "0", *map(str, prune)]
        log.info("running %s", " ".join(argv))
        n = 0
        with open(Path(tmp) / "stderr", "w+b") as err, atomic_write(arpa) as out:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
            except OSError as e:
                raise SpeechError(f"cannot run {lmplz}: {e.strerror}") from None
            try:
                with proc.stdin:
                    for words in sentences:
                        proc.stdin.write((" ".join(words) + "\n").encode("utf-8"))
                        n += 1
            except BrokenPipeError:
                pass  # lmplz stopped reading: its exit status and message say why
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            code = proc.wait()
            err.seek(0)
            message = err.read().decode("utf-8", errors="replace")
            if code != 0:
                status = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                hint = ("; remove <s>, </s> and <unk> from the text, or use --backend python"
                        if "Special word" in message else "")
                raise SpeechError(f"{source}: lmplz failed ({status}): {_tail(message)}{hint}")
            if n == 0:
                raise SpeechError(f"{source}: no text to estimate a language model from")
        for m in re.finditer(r"Substituting fallback discounts for order (\d+): (.*)", message):
            # lmplz counts orders from 0 here
            log.info("lmplz: %d-gram discounts %s: the fallback (too little text for modified Kneser-Ney's own)",
                     int(m.group(1)) + 1, m.group(2))
    return n
