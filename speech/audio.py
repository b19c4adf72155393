"""Reading and writing audio: any rate and channel count in, mono float32 at one rate out.

Audio is decoded with soundfile (libsndfile: wav, flac, ogg, mp3, aiff, ...), channels are
averaged and the rate is converted with soxr. A Kaldi ``wav.scp`` value is either a path or
a shell pipe ``"sox in.flac -t wav - |"`` whose standard output is the audio file.

Every way a file can be unusable (missing, 0 bytes, no samples, truncated, corrupt, not
audio at all, a pipe command that fails) raises :class:`~speech.errors.AudioError` with a
message that names the file and says what to do, so a bad entry deep in a corpus is found
from the message alone.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr

from speech.errors import AudioError
from speech.fileio import atomic_path

# soxr's "high quality" preset: 20-bit precision, flat to 91% of the lower Nyquist rate.
_RESAMPLE_QUALITY = "HQ"
# A FLAC stream written where the writer could not seek back (to a pipe) has no length in
# its header; libsndfile then reports a frame count near SF_COUNT_MAX and cannot decode it.
_UNKNOWN_LENGTH_FRAMES = 1 << 53
# WAV writers that cannot seek (sox to a pipe) put a placeholder such as 0x7ffff000 or
# 0xffffffff in the data chunk's length; such a length says nothing about truncation.
_WAV_PLACEHOLDER_LENGTH = 0x7FFF0000
# First bytes of the containers libsndfile reads, to tell "corrupt audio" from "not audio".
_MAGIC = {
    b"RIFF": "WAV",
    b"RIFX": "WAV",
    b"RF64": "RF64 WAV",
    b"fLaC": "FLAC",
    b"OggS": "Ogg",
    b"FORM": "AIFF",
    b"ID3": "MP3",
    b".snd": "AU",
    b"caff": "CAF",
    b"NIST": "NIST SPHERE",
}
_STDERR_TAIL_CHARS = 600


def is_pipe(value: str) -> bool:
    """True for a Kaldi input pipe ``"cmd args |"`` (a wav.scp value ending in ``|``)."""
    return value.rstrip().endswith("|")


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read an audio file as mono float32 samples in [-1, 1] at ``sample_rate``.

    Returns float32 [num_samples]: channels averaged, resampled with soxr when the file's
    rate differs. Raises AudioError naming the file when it is missing, empty, truncated,
    corrupt or not audio.
    """
    _check_rate(sample_rate)
    name = str(path)
    _check_file(name)
    samples, rate = _decode(name, name)
    return _to_mono_rate(samples, rate, sample_rate)


def load_wav_scp_entry(value: str, sample_rate: int) -> np.ndarray:
    """Read the audio a wav.scp value points to: a path, or a pipe ``"cmd args |"``.

    A pipe runs with bash (``pipefail``, so a failure anywhere in it counts) and its
    standard output is decoded as an audio file. Returns float32 [num_samples], mono, at
    ``sample_rate``.
    """
    _check_rate(sample_rate)
    if not is_pipe(value):
        return load_audio(value, sample_rate)
    data = _run_pipe(value)
    samples, rate = _decode(io.BytesIO(data), _pipe_name(value), head=data[:64])
    return _to_mono_rate(samples, rate, sample_rate)


def stream_wav_scp_entry(value: str, sample_rate: int, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """The audio of a wav.scp value (file or pipe) as float32 mono chunks [<= block] at
    ``sample_rate``, read block by block from files, so that an hour-long recording costs
    one block of memory. Raises AudioError as :func:`load_audio` does (a problem found
    mid-file is raised when its block is reached)."""
    _check_rate(sample_rate)
    if is_pipe(value):
        samples = load_wav_scp_entry(value, sample_rate)
        block = int(block_seconds * sample_rate)
        for i in range(0, len(samples), block):
            yield samples[i: i + block]
        return
    name = str(value)
    _check_file(name)
    try:
        f = sf.SoundFile(name)
    except sf.SoundFileError as e:
        raise _unopenable(name, _head(name), e) from None
    with f:
        if f.frames >= _UNKNOWN_LENGTH_FRAMES:
            raise _unknown_length(name)
        if f.frames == 0:
            raise _no_samples(name)
        resampler = None
        if f.samplerate != sample_rate:
            resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        read = 0
        block = max(1, int(block_seconds * f.samplerate))
        while read < f.frames:
            try:
                chunk = f.read(min(block, f.frames - read), dtype="float32", always_2d=True)
            except sf.SoundFileError as e:
                raise AudioError(f"{name}: truncated or corrupt audio data ({_sf_reason(e)}); "
                                 "re-create or re-copy the file") from None
            if len(chunk) == 0:
                raise AudioError(f"{name}: truncated: header declares {f.frames} samples but only {read} could "
                                 "be read; re-create or re-copy the file")
            read += len(chunk)
            mono = chunk.mean(axis=1, dtype=np.float32) if chunk.shape[1] > 1 else chunk[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=read >= f.frames)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)


def fill_digital_silence(samples: np.ndarray, sample_rate: int, level_db: float = -75.0,
                         min_run_s: float = 0.01) -> np.ndarray:
    """``samples`` [N] with every run of at least ``min_run_s`` of exact zeros replaced by
    Gaussian noise at ``level_db`` dBFS (seeded by the run's length: deterministic).

    Recordings always have a noise floor, and so do the synthetic corpora
    (speech.data.synth_speakers adds -75 dBFS); edited audio can hold true digital silence,
    which webrtcvad then hears as speech across pauses and a model never trained on it answers
    with invented words (measured: 23 of 245 pauses missed on the digits ten-minute file).
    Shorter runs of zeros occur in ordinary quiet audio and are left alone, so such audio is
    returned unchanged."""
    zero = samples == 0
    if not zero.any():
        return samples
    edges = np.flatnonzero(np.diff(np.concatenate([[0], zero.view(np.int8), [0]])))
    min_run = max(1, int(min_run_s * sample_rate))
    out = None
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= min_run:
            out = samples.astype(np.float32, copy=True) if out is None else out
            rng = np.random.default_rng(end - start)
            out[start:end] = 10 ** (level_db / 20) * rng.standard_normal(end - start)
    return samples if out is None else out


def audio_duration(value: str) -> float:
    """Duration in seconds of a wav.scp value (a path or a pipe); see :func:`audio_info`."""
    frames, rate = audio_info(value)
    return frames / rate


def audio_info(value: str) -> tuple[int, int]:
    """(number of samples, sample rate in Hz) of a wav.scp value (a path or a pipe), as
    stored, before any conversion.

    For a file only the header is read (plus, for WAV, a check that the file holds all the
    data its header declares); a pipe is run and its output decoded. Raises AudioError for
    the same problems as :func:`load_audio`.
    """
    if is_pipe(value):
        data = _run_pipe(value)
        samples, rate = _decode(io.BytesIO(data), _pipe_name(value), head=data[:64])
        return len(samples), rate
    name = str(value)
    _check_file(name)
    try:
        with sf.SoundFile(name) as f:
            frames, rate = f.frames, f.samplerate
    except sf.SoundFileError as e:
        raise _unopenable(name, _head(name), e) from None
    if frames >= _UNKNOWN_LENGTH_FRAMES:
        raise _unknown_length(name)
    if frames == 0:
        raise _no_samples(name)
    return frames, rate


def resample(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """float32 [N] mono samples at ``rate`` -> float32 [M] at ``sample_rate`` (soxr, the
    quality every reader here uses); the input itself when the rates are equal."""
    _check_rate(sample_rate)
    if rate == sample_rate:
        return samples
    return np.ascontiguousarray(soxr.resample(samples, rate, sample_rate, quality=_RESAMPLE_QUALITY),
                                dtype=np.float32)


def wav_ok(path: str | os.PathLike, sample_rate: int = 16000) -> bool:
    """A finished render: a readable mono 16-bit wav at ``sample_rate`` with samples."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        return False
    return info.samplerate == sample_rate and info.channels == 1 and info.subtype == "PCM_16" and info.frames > 0


def save_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write float32 [N] mono samples atomically; the format comes from the extension.

    Integer formats (16-bit PCM for .wav and .flac) cannot hold values outside [-1, 1],
    so samples are clipped to that range rather than left to wrap around.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"save_audio({path}): expected mono samples [N] with N > 0, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"save_audio({path}): samples contain NaN or infinity")
    _check_rate(sample_rate)
    save_audio_stream(path, [samples], sample_rate)


def save_audio_stream(path: str | os.PathLike, chunks: Iterable[np.ndarray], sample_rate: int) -> int:
    """Write float32 mono chunks to one file as they arrive (each flushed to the temporary
    file, so a reader of a streaming vocoder's output sees the start early); renamed onto
    ``path`` when the last chunk is in. Returns the number of samples written."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise AudioError(f"{path}: unknown audio format '{path.suffix}'; use .wav or .flac")
    written = 0
    with atomic_path(path) as tmp, sf.SoundFile(tmp, "w", sample_rate, 1, format=fmt) as out:
        for chunk in chunks:
            out.write(np.clip(np.asarray(chunk, dtype=np.float32), -1.0, 1.0))
            out.flush()
            written += len(chunk)
    return written


def _check_rate(sample_rate: int) -> None:
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def _to_mono_rate(samples: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """[N, C] at ``rate`` -> float32 [M] at ``sample_rate`` (channel mean, soxr)."""
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    return np.ascontiguousarray(resample(mono, rate, sample_rate), dtype=np.float32)


def _check_file(name: str) -> None:
    """Raise AudioError for a path that is missing, not a file, 0 bytes or WAV-truncated."""
    path = Path(name)
    if not path.exists():
        raise AudioError(f"{name}: no such audio file; check the path (wav.scp paths are relative to where you run)")
    if not path.is_file():
        raise AudioError(f"{name}: not a regular file; an audio file (.wav, .flac, ...) is expected")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: empty file (0 bytes); re-create it or remove it from the data directory")
    missing = _wav_missing_bytes(path)
    if missing:
        raise AudioError(
            f"{name}: truncated WAV: its header declares {missing} more bytes of audio than the file holds; "
            "re-create or re-copy the file"
        )


def _wav_missing_bytes(path: Path) -> int:
    """How many bytes of the data chunk a RIFF/WAVE file's header declares beyond its end.

    libsndfile silently shortens a truncated WAV to what is there, so this is checked from
    the chunk list. 0 when complete, not WAV, or when the length is a streaming placeholder.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            size = os.fstat(f.fileno()).st_size
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                length = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"data":
                    if length >= _WAV_PLACEHOLDER_LENGTH:
                        return 0
                    return max(0, pos + 8 + length - size)
                pos += 8 + length + (length & 1)  # chunks are padded to even sizes
    except OSError as e:
        raise AudioError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    return 0


def _head(name: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return f.read(64)
    except OSError as e:
        raise AudioError(f"{name}: cannot be read ({e.strerror}); check its permissions") from None


def _decode(source: str | io.BytesIO, name: str, head: bytes | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file or byte stream. Returns (float32 [N, C], sample rate), N > 0."""
    try:
        f = sf.SoundFile(source)
    except sf.SoundFileError as e:
        raise _unopenable(name, _head(name) if head is None else head, e) from None
    with f:
        rate, frames = f.samplerate, f.frames
        if frames >= _UNKNOWN_LENGTH_FRAMES:
            raise _unknown_length(name)
        try:
            samples = f.read(frames, dtype="float32", always_2d=True)
        except sf.SoundFileError as e:
            raise AudioError(
                f"{name}: truncated or corrupt audio data ({_sf_reason(e)}); re-create or re-copy the file"
            ) from None
    if len(samples) < frames:
        raise AudioError(
            f"{name}: truncated: header declares {frames} samples but only {len(samples)} could be read; "
            "re-create or re-copy the file"
        )
    if len(samples) == 0:
        raise _no_samples(name)
    return samples, rate


def _no_samples(name: str) -> AudioError:
    return AudioError(f"{name}: contains no samples (0-length audio); re-create it or remove it from the data directory")


def _unknown_length(name: str) -> AudioError:
    return AudioError(
        f"{name}: a FLAC stream without its length in the header (it was written to a pipe), "
        "which libsndfile cannot decode; re-encode it to a file (sox in.flac out.flac) or have "
        "the wav.scp pipe write WAV ('sox in.flac -t wav - |')"
    )


def _sf_reason(e: Exception) -> str:
    # LibsndfileError.error_string is libsndfile's own reason, without soundfile's prefix.
    return getattr(e, "error_string", None) or str(e)


def _unopenable(name: str, head: bytes, e: Exception) -> AudioError:
    """The error for a file libsndfile cannot open: corrupt audio, text, or unknown bytes."""
    reason = _sf_reason(e)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return AudioError(
                f"{name}: truncated or corrupt {kind} header ({reason}); re-create or re-copy the file"
            )
    if head[:2] == b"\xff\xfb" or head[:2] == b"\xff\xf3":  # MPEG audio frame sync
        return AudioError(f"{name}: truncated or corrupt MP3 ({reason}); re-create or re-copy the file")
    text = _as_text(head)
    if text is not None:
        first = text.splitlines()[0][:40] if text.strip() else ""
        return AudioError(
            f"{name}: a text file, not audio (it starts with {first!r}); "
            "point wav.scp at the audio file, or end a command with ' |' to run it as a pipe"
        )
    return AudioError(f"{name}: not a recognised audio format ({reason}); convert it to .wav or .flac")


def _as_text(head: bytes) -> str | None:
    """The bytes as text if they look like text (UTF-8, printable), else None."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The 64-byte window may cut a multi-byte character at its end.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if text and all(c.isprintable() or c in "\n\r\t" for c in text):
        return text
    return None


def _pipe_name(value: str) -> str:
    return f"wav.scp command '{value.strip()}'"


def _run_pipe(value: str) -> bytes:
    """Run a Kaldi input pipe and return its standard output (the audio file's bytes)."""
    command = value.rstrip()[:-1].strip()
    name = _pipe_name(value)
    if not command:
        raise AudioError(f"{name}: empty command before '|'; give the command that writes the audio")
    bash = shutil.which("bash")
    # pipefail: in "sox x.flac -t wav - | other |" a failing sox must fail the whole entry.
    argv = [bash, "-o", "pipefail", "-c", command] if bash else ["/bin/sh", "-c", command]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL_CHARS:]
        raise AudioError(
            f"{name} failed with exit code {proc.returncode}; its stderr ends: {tail or '(empty)'}; "
            "run the command by hand to see why"
        )
    if not proc.stdout:
        raise AudioError(f"{name} wrote nothing to standard output; it must write the audio file to stdout")
    return proc.stdout
