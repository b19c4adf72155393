"""Text to speech: ``speech synthesize``.

::

    speech synthesize "The birch canoe slid on the smooth planks." -o x.wav --model exp/tts
    speech synthesize --text-file lines.txt --out-dir wavs --model exp/tts [--vocoder DIR|griffinlim]
                      [--speed 1.2] [--device cpu]

The text goes through the frontend (:mod:`speech.tts.frontend`: normalisation, CMUdict and
festival pronunciations, pauses), the acoustic model of MODEL (``speech train-tts``)
predicts each token's duration and the mel frames, and the vocoder turns them into audio:
the one the model dir names (its ``vocoder``), or ``--vocoder`` (a ``speech
train-vocoder`` dir, or ``griffinlim``). ``--speed`` divides every predicted duration
(1.2: 20 % faster). A long text is split at sentences, each synthesized in turn and
written as it comes (the WaveRNN streams within a sentence too), so the start of the file
is there before the end is generated. ``--text-file`` takes Kaldi text lines ``<id> text``
and writes OUT_DIR/<id>.wav for each, and makes OUT_DIR a data dir of them (wav.scp) with
the tokens and predicted durations of each wav (tokens, durations: as ``speech
tts-durations`` writes them) and synthesize.done, whose real-time factors give the acoustic
model's, the vocoder's and the total seconds per second of audio; a killed run resumes.

Every input is read by the frontend before any audio is made: empty or unpronounceable text
is a one-line error (naming the file and line), and no wav is written; each wav is written
to a temporary file and renamed when complete.

From Python::

    from speech.tts.synthesize import Synthesizer
    samples, rate = Synthesizer.from_dir("recipes/joe/exp/tts").synthesize("Hello there.")
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch

from speech.audio import save_audio_stream
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.logs import setup_logging
from speech.fileio import read_key_value, write_key_value
from speech.stage import read_done, write_done
from speech.tts import frontend
from speech.tts.acoustic import AcousticModel
from speech.tts.frontend import Pause, Token, Word
from speech.tts.generate import Vocoder
from speech.tts.mel import MEL_CONFIG, MelConfig, check_same, griffin_lim, load_mel_config
from speech.tts.tts_dir import GRIFFIN_LIM, KIND, TtsConfig
from speech.tts.tts_durations import DURATIONS, TOKENS, token_text

log = logging.getLogger("speech.synthesize")

DONE = "synthesize.done"


class Utterance(NamedTuple):
    """One sentence as the model sees it: its tokens, and what it predicted for them."""

    tokens: list[Token]
    durations: list[int]  # mel frames of each token
    log_mel: np.ndarray  # (T, n_mels), T = sum(durations)


def read_text(text: str, where: str = "the text") -> list[list[Word | Pause]]:
    """The frontend's items of each sentence of ``text``; SpeechError naming ``where`` when
    nothing in it can be spoken."""
    if not text.strip():
        raise SpeechError(f"{where}: empty; give the text to speak")
    out = []
    for sentence in frontend.split_sentences(text):
        try:
            items = frontend.analyse(sentence)
        except SpeechError as e:
            raise SpeechError(f"{where}: {e}") from None
        if any(isinstance(it, Word) for it in items):
            out.append(items)
    if not out:
        raise SpeechError(f"{where}: has no word to pronounce; give English text")
    return out


class Synthesizer:
    """A ``kind: tts`` model dir and a vocoder, ready to speak::

        tts = Synthesizer.from_dir("exp/tts")                  # the vocoder the dir names
        samples, rate = tts.synthesize("Hello there.")         # (N,) float32 in [-1, 1]
        for chunk in tts.stream("A long text. Two sentences."):  # the same audio, as it is made
            ...
    """

    def __init__(self, model: AcousticModel, mel: MelConfig, vocoder: Vocoder | None,
                 device: torch.device = torch.device("cpu"), speed: float = 1.0):
        if speed <= 0:
            raise SpeechError(f"speed {speed}: give a positive factor (1.0: as trained, 1.2: 20 % faster)")
        self.model, self.mel, self.vocoder = model.eval().to(device), mel, vocoder
        self.device, self.speed = device, speed
        self.seconds = {"acoustic": 0.0, "vocoder": 0.0}

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @classmethod
    def from_dir(cls, model_dir: str | Path, vocoder: str | Path | None = None, device: str = "cpu",
                 speed: float = 1.0) -> "Synthesizer":
        """``vocoder``: a vocoder model dir, ``griffinlim``, or None for the one the model dir names."""
        from speech.model_dir import load_model

        model_dir = Path(model_dir)
        cfg: TtsConfig
        cfg, model = load_model(model_dir, KIND)
        mel = load_mel_config(model_dir / MEL_CONFIG)
        dev = resolve_device(device)
        choice = str(vocoder) if vocoder is not None else cfg.vocoder
        voc = None
        if choice != GRIFFIN_LIM:
            path = Path(choice) if vocoder is not None else model_dir / choice
            voc = Vocoder.from_dir(path, dev)
            check_same(voc.mel, mel, f"vocoder {path}", f"acoustic model {model_dir}")
        return cls(model, mel, voc, dev, speed)

    def utterance(self, items: Sequence[Word | Pause]) -> Utterance:
        """Tokens, predicted durations and log-mels of one sentence's frontend items."""
        toks = frontend.tokens(items)
        ids = [torch.tensor([x], device=self.device) for x in frontend.token_ids(toks)]
        lengths = torch.tensor([len(toks)], device=self.device)
        log_mel, durations, frames = self.model.infer(*ids, lengths, speed=self.speed)
        n = int(frames[0])
        if n == 0:  # every duration rounded to zero: nothing to vocode
            raise SpeechError(f"the model predicted no frame for '{frontend.format_tokens(toks)}'")
        return Utterance(toks, durations[0].tolist(), log_mel[0, :n].float().cpu().numpy())

    def vocode(self, log_mel: np.ndarray) -> Iterator[np.ndarray]:
        if self.vocoder is None:
            yield griffin_lim(log_mel, self.mel)
        else:
            yield from self.vocoder.stream(log_mel)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Audio chunks of ``text``, sentence by sentence (all of it is read first: an
        unpronounceable sentence fails before any audio)."""
        return self.stream_sentences(read_text(text))

    def stream_sentences(self, sentences: Sequence[Sequence[Word | Pause]],
                         record: list[Utterance] | None = None) -> Iterator[np.ndarray]:
        """Audio chunks of sentences the frontend has read (:func:`read_text`); each
        sentence's :class:`Utterance` appended to ``record`` when given. The seconds spent in
        the acoustic model and in the vocoder add up in ``self.seconds``."""
        for items in sentences:
            t0 = time.perf_counter()
            utt = self.utterance(items)
            self.seconds["acoustic"] += time.perf_counter() - t0
            if record is not None:
                record.append(utt)
            chunks = self.vocode(utt.log_mel)
            while True:  # the vocoder's time, not the consumer's
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                self.seconds["vocoder"] += time.perf_counter() - t0
                if chunk is None:
                    break
                yield chunk

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """(samples (N,) float32, sample rate) of ``text``."""
        chunks = list(self.stream(text))
        return np.concatenate(chunks).astype(np.float32), self.sample_rate


def read_text_file(path: Path) -> dict[str, list[list[Word | Pause]]]:
    """id -> sentences of a ``<id> text`` file, every line read by the frontend first."""
    if not path.is_file():
        raise SpeechError(f"{path}: no such file; give lines '<id> text'")
    table = read_key_value(path, allow_empty_value=True)  # a blank line is its one-line error
    if not table:
        raise SpeechError(f"{path}: no lines; give lines '<id> text'")
    lineno = {utt: k for k, utt in enumerate(table, 1)}
    return {utt: read_text(text, f"{path}:{lineno[utt]} ({utt})") for utt, text in table.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech synthesize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="?", help="the text to speak (or --text-file)")
    p.add_argument("--text-file", type=Path, help="lines '<id> text', each written to OUT_DIR/<id>.wav")
    p.add_argument("-o", "--output", type=Path, help="the wav to write (with TEXT)")
    p.add_argument("--out-dir", type=Path, help="directory of <id>.wav (with --text-file)")
    p.add_argument("--model", type=Path, required=True, help="TTS model dir (speech train-tts)")
    p.add_argument("--vocoder", help="vocoder model dir (speech train-vocoder) or griffinlim; default: the one "
                                     "the model dir names")
    p.add_argument("--speed", type=float, default=1.0, help="speaking rate factor (default 1.0; 1.2: faster)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(None)  # warnings (dropped characters) to this run's stderr
    if (args.text is None) == (args.text_file is None):
        raise SpeechError("give either TEXT or --text-file FILE")
    if args.text is not None and args.output is None:
        raise SpeechError("give -o OUT.wav for the audio of TEXT")
    if args.text_file is not None and args.out_dir is None:
        raise SpeechError("give --out-dir DIR for the wavs of --text-file")
    if args.speed <= 0:
        raise SpeechError(f"--speed {args.speed}: give a positive factor (1.0: as trained, 1.2: 20 % faster)")
    jobs = ({"": read_text(args.text)} if args.text is not None else read_text_file(args.text_file))
    tts = Synthesizer.from_dir(args.model, args.vocoder, args.device, args.speed)
    if args.text is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        n = save_audio_stream(args.output, tts.stream_sentences(jobs[""]), tts.sample_rate)
        log.info("%s: %.2f s of audio", args.output, n / tts.sample_rate)
        return 0
    write_dir(tts, jobs, args.out_dir)
    return 0


def write_dir(tts: Synthesizer, jobs: dict[str, list[list[Word | Pause]]], out: Path) -> None:
    """OUT_DIR/<id>.wav of each job, and OUT_DIR as a data dir of them (wav.scp), with the
    tokens and predicted durations of every wav (tokens, durations: its sentences' in turn),
    and synthesize.done: the real-time factors of the wavs made now (a re-run that makes none
    leaves it as it was). A wav already there (from a killed run: each is renamed into place
    when complete) is kept."""
    out.mkdir(parents=True, exist_ok=True)
    tokens, durations = read_tables(out)
    audio = 0.0
    for utt, sentences in jobs.items():
        path = out / f"{utt}.wav"
        if path.is_file() and utt in durations:
            continue
        record: list[Utterance] = []
        audio += save_audio_stream(path, tts.stream_sentences(sentences, record), tts.sample_rate) / tts.sample_rate
        tokens[utt] = " ".join(token_text(u.tokens) for u in record)
        durations[utt] = " ".join(str(d) for u in record for d in u.durations)
        write_key_value(out / TOKENS, tokens)
        write_key_value(out / DURATIONS, durations)
    write_key_value(out / "wav.scp", {utt: str((out / f"{utt}.wav").resolve()) for utt in jobs})
    total = sum(tts.seconds.values())
    rtf = {f"{k}_rtf": round(v / audio, 4) for k, v in (*tts.seconds.items(), ("total", total))} if audio else {}
    # a re-run that made nothing keeps the real-time factors of the run that made the wavs
    if audio or read_done(out / DONE) is None:
        write_done(out / DONE, {"utterances": len(jobs), "audio_seconds": round(audio, 2), **rtf})
    log.info("%s: %d wavs%s", out, len(jobs), f", real-time factor {total / audio:.3f} for the {audio:.1f} s made now"
             if audio else "")


def read_tables(out: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The tokens and durations tables of an OUT_DIR being filled (empty when new)."""
    return tuple(read_key_value(out / name) if (out / name).is_file() else {} for name in (TOKENS, DURATIONS))
