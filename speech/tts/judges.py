"""Intelligibility judges: recognisers that write down what synthesized speech says.

The WER of a judge's transcripts against the text that was synthesized measures how
intelligible the speech is, as ESPnet judges TTS with a pretrained ASR model. Two kinds:

- :class:`PocketSphinxJudge`: CMU PocketSphinx with the US-English acoustic model,
  dictionary and 3-gram LM its wheel ships: an HMM recogniser trained on real speech that
  nobody here trained, hence an independent judge;
- :class:`AsrJudge`: a model dir of this project (``kind: asr``), decoded by
  :class:`~speech.asr.transcribe.Transcriber` with the search its decoding.yaml records.

A judge is cheap to construct (it checks that it can run and says what it is); its
recogniser loads at :meth:`load` or the first :meth:`transcribe`, so a finished evaluation
loads nothing.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import numpy as np

from speech.errors import SpeechError

log = logging.getLogger("speech.judges")

# the corpus's transcription convention: lower-case words of letters and inner apostrophes
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


class Judge(Protocol):
    name: str  # names its directory of transcripts and its column of results
    source: str  # what exactly judges (recorded with its transcripts, so another judge's are not reused)
    sample_rate: int  # of the samples transcribe takes
    inputs: tuple[Path, ...]  # files whose change makes earlier transcripts stale

    def load(self) -> None:
        """Load the recogniser now (else the first :meth:`transcribe` does)."""
        ...

    def transcribe(self, samples: np.ndarray) -> str:
        """float32 [N] at ``sample_rate`` -> words, space-separated (may be empty)."""
        ...


def corpus_words(text: str) -> str:
    """A recogniser's output in the corpus's convention: lower case, apostrophes kept,
    punctuation dropped; filler tokens (``<sil>``, ``[NOISE]``, ``++UM++``) left out."""
    words = []
    for token in text.split():
        if token[0] in "<[+":
            continue
        words += _WORD.findall(token.lower())
    return " ".join(words)


class PocketSphinxJudge:
    """PocketSphinx 5 with its default US-English model (16 kHz)."""

    name = "pocketsphinx"
    sample_rate = 16000  # the rate of the acoustic model it ships
    inputs: tuple[Path, ...] = ()

    def __init__(self):
        if importlib.util.find_spec("pocketsphinx") is None:
            raise SpeechError("pocketsphinx is not installed: pip install pocketsphinx (its wheel ships the "
                              "US-English model), or leave this judge out with --no-pocketsphinx")
        self.source = f"pocketsphinx {version('pocketsphinx')}, default US-English model"
        self._decoder = None

    def load(self) -> None:
        if self._decoder is None:
            from pocketsphinx import Decoder

            t0 = time.perf_counter()
            self._decoder = Decoder()
            log.info("judge %s loaded in %.1f s", self.name, time.perf_counter() - t0)

    def transcribe(self, samples: np.ndarray) -> str:
        self.load()
        pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        self._decoder.start_utt()
        # full_utt: the whole utterance at once, so it is decoded as one (no endpointing)
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return corpus_words(hyp.hypstr) if hyp is not None else ""


class AsrJudge:
    """A trained ASR model dir of this project, decoded as its decoding.yaml says (greedy
    CTC when it has none)."""

    def __init__(self, model_dir: str | Path, name: str | None = None, device: str = "cpu"):
        from speech.asr.model_dir import KIND, AsrConfig  # the ASR stack: only for such a judge
        from speech.asr.search import DECODING, DecodingSetup
        from speech.model_dir import CONFIG, WEIGHTS, load_model_config

        self.model_dir = Path(model_dir)
        # a dir of another kind, or a decoding.yaml naming a graph that moved: one line, now,
        # before any system is evaluated
        cfg: AsrConfig = load_model_config(self.model_dir, KIND)
        if (self.model_dir / DECODING).is_file():
            DecodingSetup.load(self.model_dir / DECODING)
        self.name = name or self.model_dir.absolute().name
        self.source = f"asr model {self.model_dir.absolute()}"
        self.sample_rate = cfg.features.sample_rate
        self.inputs = tuple(self.model_dir / f for f in (CONFIG, WEIGHTS, DECODING))
        self._device = device
        self._transcriber = None

    def load(self) -> None:
        if self._transcriber is None:
            from speech.asr.transcribe import Transcriber

            t0 = time.perf_counter()
            self._transcriber = Transcriber.from_dir(self.model_dir, self._device)
            log.info("judge %s loaded in %.1f s", self.name, time.perf_counter() - t0)

    def transcribe(self, samples: np.ndarray) -> str:
        self.load()
        return self._transcriber.transcribe(samples)
