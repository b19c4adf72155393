"""Speech synthesizers as corpus speakers: Debian's flite, festival and espeak-ng, and Piper.

A :class:`SynthSpeaker` is one synthetic speaker of a corpus (engine + voice name + optional
espeak variant) and the real person behind it (``identity``): flite ``slt`` and festival
``slt-hts`` are both recordings of the same woman, so a recipe that holds speakers out of
training must hold out identities, not voices. :func:`render` turns many ``(text, out_path,
speed, pitch)`` items into 16 kHz mono 16-bit wav files for one speaker:

- flite: one process per sentence (a call takes ~10 ms);
- espeak-ng: one process per sentence (22.05 kHz output, resampled);
- festival: ONE process per :func:`render` call that synthesises every item, because
  festival's start-up (loading the voice) costs far more than a short sentence;
- piper: a VITS voice of a real person from a PyPI package (``joe``: en_US-joe-medium,
  22.05 kHz, resampled), loaded once per :func:`render` call in this process (~0.7 s).

Speed is a rate factor (1.2 = 20 % faster); pitch is a shift in semitones. Both use the
engine's own controls where the voice has them (flite ``duration_stretch`` and
``int_f0_target_mean``; festival ``Duration_Stretch`` and ``int_lr_params`` for diphone voices,
hts_engine's ``-r`` for HTS voices; espeak ``-s`` and ``-p``; Piper's ``length_scale``). Voices
whose pitch cannot be set (flite ``rms``, festival ``slt-hts``, Piper) are pitch-shifted by
resampling, as Kaldi's speed perturbation does: pitch and formants move together, and the
speed given to the engine is corrected so that the duration still follows ``speed`` (for
Piper only roughly: its durations respond less than in proportion to ``length_scale``, a
1.56x longer scale measured as ~1.3x longer speech). Piper also draws its two noise scales
per item (the delivery, and the spread of phone durations) around the voice's own, seeded
by the output file name.

Every output is trimmed to its speech with 0.1-0.2 s of silence at each end (synthesizers
leave anything from 0 to 0.3 s), and a very low noise floor (-75 dBFS) is added so that no
frame is digital zero (log-energy features of exact zeros are -inf or a floor constant that
real recordings never produce). Outputs are deterministic for a given (speaker, text, speed,
pitch, output file name) where the engine is, and for Piper, whose VITS model draws noise in
the ONNX graph, for the same batch of items (onnxruntime's seed is set from their names
before the voice is loaded; a resumed run renders other batches, so other takes).
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import soundfile as sf
import soxr

from speech.data.piper_speaker import INSTALL_HINT as PIPER_INSTALL_HINT
from speech.data.piper_speaker import PACKAGED_VOICES, PiperSpeaker, packaged_voice, packaged_voice_installed
from speech.errors import SpeechError
from speech.fileio import atomic_write

logger = logging.getLogger(__name__)

ENGINES = ("flite", "festival", "espeak-ng", "piper")
INSTALL_HINT = "install the synthesizers with tools/install_system_packages.sh"

# flite voice name -> identity. awb_time is left out: it only speaks clock times.
_FLITE_IDENTITY = {"kal16": "kal", "kal": "kal", "awb": "awb", "rms": "rms", "slt": "slt"}
# Default mean F0 (Hz) of the flite voices whose pitch follows int_f0_target_mean; measured
# with pyin on their default output. rms ignores int_f0_target_mean (measured), so it is absent.
_FLITE_F0 = {"kal16": 95.0, "kal": 95.0, "awb": 130.0, "slt": 170.0}
# Short speaker-id names where the flite name alone would make one id a prefix of another
# ("flite-kal" / "flite-kal16"), which breaks Kaldi's utt2spk/spk2utt sort agreement.
_FLITE_ID_NAME = {"kal": "kal8k"}


class _FestivalVoice(NamedTuple):
    function: str  # Scheme function that selects the voice
    identity: str
    hts: bool  # HTS voices: speed via hts_engine "-r"; no pitch control


FESTIVAL_VOICES = {
    "kal": _FestivalVoice("voice_kal_diphone", "kal", False),
    "ked": _FestivalVoice("voice_ked_diphone", "ked", False),
    "slt-hts": _FestivalVoice("voice_cmu_us_slt_arctic_hts", "slt", True),
}
_FESTIVAL_PACKAGES = {"kal": "festvox-kallpc16k", "ked": "festvox-kdlpc16k", "slt-hts": "festvox-us-slt-hts"}

_ESPEAK_DEFAULT_WPM = 175  # espeak-ng's default -s
# Piper's per-item noise scales, log-uniform around Joe's own 0.667 and 0.8: less noise
# reads flatter and more evenly timed, more reads livelier; past ~1.0 words start to slur
# (heard here), so the ranges stop short of that.
_PIPER_NOISE_SCALE = (0.45, 0.9)
_PIPER_NOISE_W = (0.5, 1.0)
_ESPEAK_SEMITONES_PER_STEP = 0.16  # -p 50 +/- 15 measured as +/- 2.4 semitones of F0


@dataclass(frozen=True)
class SynthSpeaker:
    """One synthetic speaker.

    engine: "flite" | "festival" | "espeak-ng" | "piper".
    name: flite voice (kal16, awb, rms, slt, kal), festival voice (kal, ked, slt-hts),
        espeak-ng language (en-us, en-gb, en-gb-scotland, ...) or packaged Piper voice (joe).
    identity: the real person behind the voice; filled in for flite, festival and Piper voices,
        ``espeak-<variant>`` for espeak-ng (one variant sounds alike in every accent).
    variant: espeak-ng voice variant (``f3`` in ``-v en-us+f3``); None for the others.
    speed: rate factor (>1 faster) applied to every item; pitch: semitones added to every item.
    """

    engine: str
    name: str
    identity: str = ""
    variant: str | None = None
    speed: float = 1.0
    pitch: float = 0.0

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise SpeechError(f"unknown synthesizer engine '{self.engine}'; use one of {', '.join(ENGINES)}")
        if self.variant is not None and self.engine != "espeak-ng":
            raise SpeechError(f"{self.engine} voice '{self.name}': variants exist only for espeak-ng")
        if not self.speed > 0:
            raise SpeechError(f"voice {self.engine}/{self.name}: speed must be > 0, got {self.speed}")
        if not self.identity:
            object.__setattr__(self, "identity", _default_identity(self.engine, self.name, self.variant))

    @property
    def id(self) -> str:
        """Short speaker id: ``flite-awb``, ``fest-slthts``, ``espeak-us-f3``, ``piper-joe`` (no ``_``)."""
        if self.engine == "flite":
            return f"flite-{_FLITE_ID_NAME.get(self.name, self.name)}"
        if self.engine == "festival":
            return "fest-" + self.name.replace("-", "")
        if self.engine == "piper":
            return "piper-" + self.name.replace("_", "")
        accent = self.name.split("-")[-1]  # en-us -> us, en-gb-scotland -> scotland
        return f"espeak-{accent}-{self.variant}" if self.variant else f"espeak-{accent}"

    @property
    def native_pitch(self) -> bool:
        """True when the engine sets this voice's F0 itself (else pitch shifts by resampling)."""
        if self.engine == "flite":
            return self.name in _FLITE_F0
        if self.engine == "festival":
            return not FESTIVAL_VOICES[self.name].hts if self.name in FESTIVAL_VOICES else False
        return self.engine == "espeak-ng"

    def __str__(self) -> str:
        full = f"{self.name}+{self.variant}" if self.variant else self.name
        return f"{self.engine} voice '{full}'"


def _default_identity(engine: str, name: str, variant: str | None) -> str:
    if engine == "flite":
        return _FLITE_IDENTITY.get(name, name)
    if engine == "festival":
        return FESTIVAL_VOICES[name].identity if name in FESTIVAL_VOICES else name
    if engine == "piper":
        return name  # a packaged Piper voice is one person
    return f"espeak-{variant or 'default'}"


class RenderItem(NamedTuple):
    """One sentence to synthesise: speed multiplies and pitch (semitones) adds to the voice's."""

    text: str
    out_path: Path
    speed: float = 1.0
    pitch: float = 0.0


# ---------------------------------------------------------------------------------------
# What is installed


def _run_text(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else ""


@functools.lru_cache(maxsize=None)
def installed_names(engine: str) -> frozenset[str]:
    """Voice names (flite, festival) or languages and ``+variants`` (espeak-ng) installed here.

    Empty when the engine itself is not installed. espeak-ng variants are returned as
    ``+f3``; MBROLA-based languages are left out unless the ``mbrola`` program exists.
    Piper (a Python package, not a program): the packaged voices installed.
    """
    if engine == "piper":
        return frozenset(n for n in PACKAGED_VOICES if packaged_voice_installed(n))
    if shutil.which(engine) is None:
        return frozenset()
    if engine == "flite":
        # "Voices available: kal awb_time kal16 awb rms slt"
        out = _run_text(["flite", "-lv"])
        return frozenset(out.split(":", 1)[1].split()) if ":" in out else frozenset()
    if engine == "festival":
        out = _run_text(["festival", "--pipe"], "(print (voice.list))\n")
        listed = set(out.replace("(", " ").replace(")", " ").split())
        return frozenset(n for n, v in FESTIVAL_VOICES.items() if v.function.removeprefix("voice_") in listed)
    names: set[str] = set()
    mbrola = shutil.which("mbrola") is not None
    for line in _run_text(["espeak-ng", "--voices"]).splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and (mbrola or not fields[4].startswith("mb/")):
            names.add(fields[1])
    for line in _run_text(["espeak-ng", "--voices=variant"]).splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            names.add("+" + fields[4][3:])
    return frozenset(names)


def speaker_problem(speaker: SynthSpeaker) -> str | None:
    """Why ``speaker`` cannot be rendered on this machine, or None when it can."""
    names = installed_names(speaker.engine)
    if speaker.engine == "piper":
        if speaker.name not in PACKAGED_VOICES:
            return f"{speaker} is unknown; packaged Piper voices are {', '.join(sorted(PACKAGED_VOICES))}"
        return None if speaker.name in names else f"{speaker} is not installed; {PIPER_INSTALL_HINT}"
    if not names:
        return f"{speaker.engine} is not installed; {INSTALL_HINT}"
    if speaker.engine == "festival" and speaker.name not in FESTIVAL_VOICES:
        return f"{speaker} is unknown; festival voices are {', '.join(sorted(FESTIVAL_VOICES))}"
    if speaker.name not in names:
        if speaker.engine == "festival":
            return f"{speaker} is not installed (Debian package {_FESTIVAL_PACKAGES[speaker.name]}); {INSTALL_HINT}"
        known = sorted(n for n in names if not n.startswith("+"))
        return f"{speaker} is not installed; installed: {', '.join(known)}"
    if speaker.variant is not None and "+" + speaker.variant not in names:
        return f"{speaker}: espeak-ng has no variant '{speaker.variant}' (espeak-ng --voices=variant lists them)"
    return None


def standard_speakers() -> list[SynthSpeaker]:
    """Every speaker this module knows: the flite and festival voices, and espeak-ng English
    accents x the plain variants m1-m7 and f1-f5 (installed or not)."""
    speakers = [SynthSpeaker("flite", n) for n in ("kal16", "awb", "rms", "slt", "kal")]
    speakers += [SynthSpeaker("festival", n) for n in FESTIVAL_VOICES]
    accents = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
               "en-029", "en-us-nyc")
    variants = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 6)]
    speakers += [SynthSpeaker("espeak-ng", a, variant=v) for a in accents for v in variants]
    speakers += [SynthSpeaker("piper", n) for n in PACKAGED_VOICES]
    return speakers


def available_speakers(speakers: Iterable[SynthSpeaker] | None = None) -> list[SynthSpeaker]:
    """The speakers of ``speakers`` (default: :func:`standard_speakers`) this machine can render.

    Each one skipped is logged as a warning saying why (engine or voice package missing).
    """
    usable: list[SynthSpeaker] = []
    missing_engines: set[str] = set()
    for speaker in standard_speakers() if speakers is None else speakers:
        problem = speaker_problem(speaker)
        if problem is None:
            usable.append(speaker)
        elif not installed_names(speaker.engine):
            if speaker.engine not in missing_engines:
                missing_engines.add(speaker.engine)
                logger.warning("skipping all %s voices: %s", speaker.engine, problem)
        else:
            logger.warning("skipping %s: %s", speaker.id, problem)
    return usable


# ---------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class _Job:
    """One item as given to the engine: where its raw output goes and how to finish it."""

    item: RenderItem
    raw: Path
    engine_speed: float  # rate factor passed to the engine
    f0_factor: float  # F0 factor passed to the engine (1.0 where pitch is done by resampling)
    tape_factor: float = 1.0  # resampling factor applied after the engine


def render(speaker: SynthSpeaker, items: Sequence[RenderItem], sample_rate: int = 16000,
           edge_silence: tuple[float, float] = (0.10, 0.20), noise_floor_db: float = -75.0) -> None:
    """Synthesise every item with ``speaker`` into ``item.out_path`` (mono 16-bit PCM wav).

    Each file is written atomically. Silence at each end is cut or padded to a length drawn
    uniformly from ``edge_silence`` (seconds), seeded by the output file name.
    Raises SpeechError naming the speaker (and the text) when its voice is not installed, a text
    is empty, or the engine fails or produces silence.
    """
    if not items:
        return
    problem = speaker_problem(speaker)
    if problem is not None:
        raise SpeechError(f"{speaker.id}: {problem}")
    with tempfile.TemporaryDirectory(prefix="speech-synth-") as tmp:
        jobs = []
        for i, item in enumerate(items):
            if not item.text.strip():
                raise SpeechError(f"{speaker.id}: empty text for {item.out_path}")
            if not item.speed > 0:
                raise SpeechError(f"{speaker.id}: speed must be > 0 for {item.out_path}, got {item.speed}")
            speed = speaker.speed * item.speed
            factor = 2.0 ** ((speaker.pitch + item.pitch) / 12.0)
            if speaker.native_pitch:
                jobs.append(_Job(item, Path(tmp) / f"{i}.wav", speed, factor))
            else:
                # Resampling by `factor` speeds the audio up by `factor` too: ask the engine
                # for the remaining speed so that the final speed is still `speed`.
                jobs.append(_Job(item, Path(tmp) / f"{i}.wav", speed / factor, 1.0, factor))
        if speaker.engine == "festival":
            _run_festival(speaker, jobs, Path(tmp))
        elif speaker.engine == "piper":
            _run_piper(speaker, jobs)
        else:
            for job in jobs:
                _run_one(speaker, job)
        for job in jobs:
            _finish(speaker, job, sample_rate, edge_silence, noise_floor_db)


def _fail(speaker: SynthSpeaker, text: str, detail: str) -> SpeechError:
    return SpeechError(f"{speaker.id} ({speaker}) failed on text '{text}': {detail.strip()[-500:]}")


def _run_one(speaker: SynthSpeaker, job: _Job) -> None:
    """flite or espeak-ng: one process per sentence (start-up is a few milliseconds)."""
    text = " ".join(job.item.text.split())
    if speaker.engine == "flite":
        argv = ["flite", "-voice", speaker.name, "--setf", f"duration_stretch={1.0 / job.engine_speed:.4f}"]
        if speaker.native_pitch:
            argv += ["--setf", f"int_f0_target_mean={_FLITE_F0[speaker.name] * job.f0_factor:.2f}"]
        argv += ["-t", text, "-o", str(job.raw)]
        stdin = None
    else:
        full = f"{speaker.name}+{speaker.variant}" if speaker.variant else speaker.name
        pitch = 50 + 12.0 * math.log2(job.f0_factor) / _ESPEAK_SEMITONES_PER_STEP
        argv = ["espeak-ng", "-v", full, "-s", str(round(_ESPEAK_DEFAULT_WPM * job.engine_speed)),
                "-p", str(min(99, max(0, round(pitch)))), "-w", str(job.raw), "--stdin"]
        stdin = text  # on stdin, a text starting with "-" is not taken for an option
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not job.raw.is_file():
        raise _fail(speaker, text, f"{argv[0]} exited with code {proc.returncode}: {proc.stderr}")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Diphone voices: Duration_Stretch and the F0 targets of int_lr_params, scaled per item
# relative to the voice's own settings.
_FESTIVAL_DIPHONE_PRELUDE = """
(define speech_lr int_lr_params)
(define speech_stretch (Parameter.get 'Duration_Stretch))
(define (speech_f0 factor)
  (set! int_lr_params
        (mapcar (lambda (p) (if (or (eq? (car p) 'target_f0_mean) (eq? (car p) 'target_f0_std))
                                (list (car p) (* factor (car (cdr p)))) p))
                speech_lr)))
"""
# HTS voices ignore Duration_Stretch and int_lr_params; hts_engine takes a speech rate "-r".
_FESTIVAL_HTS_PRELUDE = "(define speech_hts hts_engine_params)"


def _run_festival(speaker: SynthSpeaker, jobs: list[_Job], tmp: Path) -> None:
    """All items in one festival process: a Scheme script that selects the voice once."""
    spec = FESTIVAL_VOICES[speaker.name]
    lines = [f"({spec.function})", _FESTIVAL_HTS_PRELUDE if spec.hts else _FESTIVAL_DIPHONE_PRELUDE]
    for job in jobs:
        if spec.hts:
            lines.append(f"(set! hts_engine_params (append speech_hts (list (list \"-r\" {job.engine_speed:.4f}))))")
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch (/ speech_stretch {job.engine_speed:.4f}))")
            lines.append(f"(speech_f0 {job.f0_factor:.4f})")
        text = _scheme_string(" ".join(job.item.text.split()))
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text {text})) {_scheme_string(str(job.raw))} 'riff)")
    script = tmp / "render.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True, check=False)
    # festival -b stops at the first error, so the first missing output is the failing item.
    failed = next((job for job in jobs if not job.raw.is_file()), None)
    if proc.returncode != 0 or failed is not None:
        text = failed.item.text if failed is not None else jobs[-1].item.text
        raise _fail(speaker, text, f"festival exited with code {proc.returncode}: {proc.stderr or proc.stdout}")


def _run_piper(speaker: SynthSpeaker, jobs: list[_Job]) -> None:
    """All items with one loaded voice, in this process: one thread, as render_all runs one
    render per core."""
    names = "\n".join(job.item.out_path.name for job in jobs)
    voice = PiperSpeaker(packaged_voice(speaker.name), num_threads=1, seed=zlib.crc32(names.encode("utf-8")))
    for job in jobs:
        rng = np.random.default_rng(zlib.crc32(b"piper:" + job.item.out_path.name.encode("utf-8")))
        noise_scale, noise_w = (float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                                for lo, hi in (_PIPER_NOISE_SCALE, _PIPER_NOISE_W))
        text = " ".join(job.item.text.split())
        try:
            audio = voice.speak(text, length_scale=1.0 / job.engine_speed, noise_scale=noise_scale, noise_w=noise_w)
        except SpeechError as e:
            raise _fail(speaker, text, str(e)) from None
        sf.write(job.raw, audio, voice.sample_rate, subtype="FLOAT")


def _finish(speaker: SynthSpeaker, job: _Job, sample_rate: int, edge_silence: tuple[float, float],
            noise_floor_db: float) -> None:
    """Raw engine output -> trimmed, resampled, noise-floored 16-bit wav at ``out_path``."""
    try:
        audio, rate = sf.read(job.raw, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise _fail(speaker, job.item.text, f"unreadable output: {e}") from e
    x = audio.mean(axis=1)  # [num_samples]
    num = len(x)
    rng = np.random.default_rng(zlib.crc32(job.item.out_path.name.encode("utf-8")))
    start, end = _speech_bounds(x, rate)
    if end <= start:
        raise _fail(speaker, job.item.text, "the engine produced silence")
    # Edge lengths are wanted after resampling, which shortens the audio by tape_factor.
    lead, trail = (int(rng.uniform(*edge_silence) * rate * job.tape_factor) for _ in range(2))
    x = np.pad(x[max(0, start - lead):min(num, end + trail)], (max(0, lead - start), max(0, end + trail - num)))
    y = soxr.resample(x, rate * job.tape_factor, sample_rate)  # [num_output_samples]
    y = y + rng.normal(0.0, 10.0 ** (noise_floor_db / 20.0), size=len(y)).astype(np.float32)
    pcm = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    with atomic_write(job.item.out_path, "wb") as f:
        sf.write(f, pcm, sample_rate, format="WAV", subtype="PCM_16")


def _speech_bounds(x: np.ndarray, rate: int, floor_below_peak_db: float = 45.0) -> tuple[int, int]:
    """[start, end) sample range from the first to the last 10 ms frame within
    ``floor_below_peak_db`` of the loudest frame (weak final bursts and fricatives stay in)."""
    hop = max(1, rate // 100)
    n = len(x) // hop
    if n == 0:
        return 0, 0
    energy = np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12  # [n]
    db = 10.0 * np.log10(energy)
    if db.max() < -80.0:  # nothing above the 16-bit noise floor
        return 0, 0
    speech = np.nonzero(db > db.max() - floor_below_peak_db)[0]
    return int(speech[0] * hop), int(min(len(x), (speech[-1] + 1) * hop))
