"""Synthetic corpora: many utterances rendered by Debian's synthesizers into Kaldi data dirs.

A recipe's data preparation plans its utterances (:class:`Utterance`: id, voice, text, speed,
pitch, wav path) from a seed, then :func:`build_set` renders the missing wav files in
parallel and writes the data directory. The plan is deterministic, so a finished set is
recognised and skipped, and a killed run resumes keeping the wav files already rendered.

:data:`HELD_OUT_SPLIT` is the voice split every recipe uses: dev and test hold out whole
*identities* (the person behind a voice: flite slt and festival slt-hts are both "slt"), so
both measure what a recognizer does on voices it has never heard, and dev predicts test:

- train: kal (flite kal16 + festival kal), awb (flite), slt (flite slt + festival slt-hts),
  joe (Piper en_US-joe-medium, a VITS model of a real speaker: the most natural voice here),
  and 11 espeak-ng variants over 7 accents;
- dev:  rms (flite) + espeak-ng en-us+m4 and en-gb+f3;
- test: ked (festival) + espeak-ng en-us+m5 and en-gb+f5.

Training gets every voice it can (more distinct voices generalize better to unseen ones);
the held-out sets each get one flite/festival voice (a male US voice, the kind most of the
training data is) and one male and one female espeak-ng variant. flite, festival and Piper
voices, which sound closer to people, weigh 3x an espeak-ng voice. Joe is one person, so he
is never in dev or test; without the tts extra he is skipped with a warning.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import logging
import math
import multiprocessing
import random
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple, Protocol, Sequence

import soundfile as sf

from speech.audio import wav_ok
from speech.data.datadir import DataDir
from speech.data.synth_speakers import RenderItem, SynthSpeaker, available_speakers, render
from speech.errors import DataDirError, SpeechError
from speech.fileio import kaldi_sort_key

logger = logging.getLogger(__name__)

SETS = ("train", "dev", "test")
FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur")
Split = dict[str, list[tuple[SynthSpeaker, float]]]
# every utterance draws its rate and pitch shift from these: more variety per voice
SPEED_RANGE = (0.85, 1.15)
PITCH_RANGE = (-2.0, 2.0)  # semitones


def _espeak(accent: str, variant: str) -> SynthSpeaker:
    return SynthSpeaker("espeak-ng", accent, variant=variant)


# (voice, weight): a voice's share of its set's utterances is proportional to its weight.
HELD_OUT_SPLIT: Split = {
    "train": [
        (SynthSpeaker("flite", "kal16"), 3), (SynthSpeaker("festival", "kal"), 3), (SynthSpeaker("flite", "awb"), 3),
        (SynthSpeaker("flite", "slt"), 3), (SynthSpeaker("festival", "slt-hts"), 3), (SynthSpeaker("piper", "joe"), 3),
        (_espeak("en-us", "m1"), 1), (_espeak("en-gb", "m2"), 1), (_espeak("en-us", "m3"), 1),
        (_espeak("en-gb-scotland", "m6"), 1), (_espeak("en-us-nyc", "m7"), 1), (_espeak("en-029", "m8"), 1),
        (_espeak("en-us", "f1"), 1), (_espeak("en-gb", "f2"), 1), (_espeak("en-gb-x-rp", "f4"), 1),
        (_espeak("en-us", "linda"), 1), (_espeak("en-gb-x-gbclan", "steph"), 1),
    ],
    "dev": [(SynthSpeaker("flite", "rms"), 3), (_espeak("en-us", "m4"), 1), (_espeak("en-gb", "f3"), 1)],
    "test": [(SynthSpeaker("festival", "ked"), 3), (_espeak("en-us", "m5"), 1), (_espeak("en-gb", "f5"), 1)],
}


class Utterance(NamedTuple):
    utt_id: str
    voice: SynthSpeaker
    text: str
    speed: float
    pitch: float
    wav: Path

    @property
    def speaker(self) -> str:
        return self.voice.id


class CorpusUtterance(Protocol):
    """What :func:`set_is_complete` and :func:`write_set` need of an utterance (an
    :class:`Utterance`, or a recipe's own record for another kind of speaker)."""

    utt_id: str
    speaker: str
    text: str
    wav: Path


def check_split(split: Split) -> None:
    """Identities never shared between sets, and no speaker id a prefix of another (Kaldi
    needs utt2spk sorted by utterance to be sorted by speaker as well)."""
    owner: dict[str, str] = {}
    for name, voices in split.items():
        for voice, _ in voices:
            if owner.setdefault(voice.identity, name) != name:
                raise SpeechError(f"identity '{voice.identity}' is in both {owner[voice.identity]} and {name}")
    ids = sorted((v.id for vs in split.values() for v, _ in vs), key=kaldi_sort_key)
    for a, b in zip(ids, ids[1:]):
        if b.startswith(a):
            raise SpeechError(f"speaker id '{a}' is a prefix of '{b}'; Kaldi sorting would break")


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainder)."""
    exact = [total * w / sum(weights) for w in weights]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def set_is_complete(data_dir: Path, utts: Sequence[CorpusUtterance]) -> bool:
    """The data dir exists with every file, matches the plan, and every wav exists."""
    if not all((data_dir / f).is_file() for f in FILES):
        return False
    try:
        d = DataDir.read(data_dir)
    except DataDirError:
        return False
    return (d.text == {u.utt_id: u.text for u in utts}
            and d.utt2spk == {u.utt_id: u.speaker for u in utts}
            and d.wav_scp == {u.utt_id: str(u.wav) for u in utts}
            and all(u.wav.is_file() for u in utts))


def _render_chunk(chunk: tuple[SynthSpeaker, list[RenderItem]]) -> int:
    render(*chunk)
    return len(chunk[1])


def render_all(utts: list[Utterance], nj: int) -> None:
    """Render the utterances whose wav is missing or invalid, in ``nj`` processes.

    Work is cut into per-voice chunks (one festival process each) of about an eighth of a
    job's share, largest first, so the jobs finish together.
    """
    todo = [u for u in utts if not wav_ok(u.wav)]
    if len(todo) < len(utts):
        logger.info("%d of %d wav files already rendered", len(utts) - len(todo), len(utts))
    if not todo:
        return
    by_voice: dict[SynthSpeaker, list[RenderItem]] = defaultdict(list)
    for u in todo:
        by_voice[u.voice].append(RenderItem(u.text, u.wav, u.speed, u.pitch))
    size = max(25, math.ceil(len(todo) / (8 * nj)))
    chunks = [(v, items[i:i + size]) for v, items in by_voice.items() for i in range(0, len(items), size)]
    chunks.sort(key=lambda c: -len(c[1]))
    done = 0
    with multiprocessing.Pool(nj) if nj > 1 else contextlib.nullcontext() as pool:
        for n in pool.imap_unordered(_render_chunk, chunks) if pool else map(_render_chunk, chunks):
            done += n
            logger.info("rendered %d/%d", done, len(todo))


def write_set(data_dir: Path, utts: Sequence[CorpusUtterance]) -> DataDir:
    """The data dir of ``utts`` (wav.scp, text, utt2spk, spk2utt, utt2dur), written."""
    d = DataDir(
        path=data_dir,
        wav_scp={u.utt_id: str(u.wav) for u in utts},
        utt2spk={u.utt_id: u.speaker for u in utts},
        text={u.utt_id: u.text for u in utts},
        utt2dur={u.utt_id: sf.info(str(u.wav)).duration for u in utts},
    )
    d.write()
    return d


def select_voices(patterns: str, split: Split = HELD_OUT_SPLIT) -> Split:
    """``split`` restricted to comma-separated fnmatch patterns of speaker ids or identities
    (all when empty) and to the voices installed here; every set keeps at least one."""
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    installed = set(available_speakers([v for vs in split.values() for v, _ in vs]))
    kept = {}
    for name, voices in split.items():
        keep = [(v, w) for v, w in voices
                if v in installed and (not pats or any(fnmatch.fnmatchcase(v.id, p) or fnmatch.fnmatchcase(v.identity, p)
                                                       for p in pats))]
        if not keep:
            raise SpeechError(f"no voice left for {name} (its voices: {', '.join(v.id for v, _ in voices)}); "
                              "widen --voices or install the synthesizers (tools/install_system_packages.sh)")
        kept[name] = keep
    return kept


def build_set(data_dir: Path, utts: list[Utterance], nj: int) -> DataDir:
    """The data dir of ``utts``: read back when already complete, else rendered and written."""
    if set_is_complete(data_dir, utts):
        logger.info("%s is complete; skipping", data_dir)
        return DataDir.read(data_dir)
    logger.info("%s: rendering %d utterances with %d voices, %d jobs",
                data_dir, len(utts), len({u.voice for u in utts}), nj)
    render_all(utts, nj)
    return write_set(data_dir, utts)


def summary_line(name: str, d: DataDir, voices: list[tuple[SynthSpeaker, float]]) -> str:
    identities = sorted({v.identity for v, _ in voices})
    return (f"{name:5s} {len(d.text):6d} utts {sum(d.utt2dur.values()) / 3600:7.3f} h "
            f"{len(voices):3d} speakers ({len(identities)} identities: {' '.join(identities)})")


def add_corpus_arguments(p: argparse.ArgumentParser, hours: float, min_eval_utts: int = 40, voices: bool = True) -> None:
    """The options every synthetic-corpus script takes (``hours``, ``min_eval_utts``: the
    defaults; ``voices``: whether there is a choice of voices)."""
    p.add_argument("--out-dir", type=Path, default=Path("data"), help="data directories go to OUT_DIR/{train,dev,test}")
    p.add_argument("--audio-dir", type=Path, default=Path("corpus"), help="wav files go here")
    p.add_argument("--hours", type=float, default=hours, help=f"hours of training speech (default {hours})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel rendering processes")
    if voices:
        p.add_argument("--voices", default="",
                       help="comma-separated patterns (fnmatch) of speaker ids or identities to keep, e.g. 'flite-*,ked'")
    p.add_argument("--min-eval-utts", type=int, default=min_eval_utts,
                   help=f"at least this many dev and test utterances (default {min_eval_utts})")


def check_corpus_arguments(args: argparse.Namespace) -> None:
    if args.hours <= 0 or args.nj < 1 or args.min_eval_utts < 1:
        raise SpeechError("--hours must be > 0, --nj and --min-eval-utts >= 1")


def draw_prosody(rng: random.Random) -> tuple[float, float]:
    """(speed, pitch in semitones) for one utterance, rounded as they are stored."""
    return round(rng.uniform(*SPEED_RANGE), 3), round(rng.uniform(*PITCH_RANGE), 2)
