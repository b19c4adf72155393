#!/usr/bin/env python3
"""Generate the digits corpus (TIDIGITS-style connected digits) with synthetic voices.

Vocabulary: zero one two three four five six seven eight nine oh; 1-7 digits per utterance,
lengths uniform. Writes <out-dir>/{train,dev,test} (wav.scp, text, utt2spk, spk2utt,
utt2dur) and 16 kHz wav files under <audio-dir>/<set>/<speaker>/.

Speakers: every synthetic voice (engine + voice + espeak variant) is one speaker, and every
utterance id starts with its speaker id (``flite-awb_0003_81o5``: speaker, index, digits
with o = oh and z = zero). The voices are split as speech.data.synth_corpus.HELD_OUT_SPLIT:
dev and test are voices never heard in training. Within a voice, each utterance draws its
speed (0.85-1.15) and pitch (+/- 2 semitones); Piper's Joe also his own noise scales.

Everything is drawn from --seed: the same seed gives the same texts, speakers and utterance
ids, and bitwise the same audio (the engines are deterministic; Piper's Joe for the same
--nj, see speech.data.synth_speakers). A finished set is skipped; a
killed run resumes, keeping the wav files already rendered.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from pathlib import Path

from speech.cli import run_script
from speech.data.synth_corpus import (SETS, Utterance, add_corpus_arguments, allocate, build_set,
                                      check_corpus_arguments, check_split, draw_prosody, select_voices, summary_line)
from speech.data.synth_speakers import SynthSpeaker

logger = logging.getLogger("prepare_data")

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
CODE = {"zero": "z", "oh": "o", **{w: str(i) for i, w in enumerate(DIGITS[1:10], 1)}}
MAX_DIGITS = 7
EVAL_FRACTION = 0.125  # dev and test each: this fraction of the training utterances
SECONDS_PER_UTTERANCE = 1.52  # measured mean of a training utterance (4 digits + 0.3 s of edges)


def plan_set(name: str, voices: list[tuple[SynthSpeaker, float]], num_utts: int, seed: int,
             audio_dir: Path) -> list[Utterance]:
    """The utterances of one set. Each speaker has its own random stream seeded by (seed,
    set, speaker), drawn utterance by utterance, so a larger corpus extends a smaller one."""
    utts = []
    for (voice, _), count in zip(voices, allocate(num_utts, [w for _, w in voices])):
        rng = random.Random(f"digits-{seed}-{name}-{voice.id}")
        for i in range(count):
            words = [rng.choice(DIGITS) for _ in range(rng.randint(1, MAX_DIGITS))]
            speed, pitch = draw_prosody(rng)
            utt_id = f"{voice.id}_{i:04d}_{''.join(CODE[w] for w in words)}"
            wav = audio_dir / name / voice.id / f"{utt_id}.wav"
            utts.append(Utterance(utt_id, voice, " ".join(words), speed, pitch, wav))
    return utts


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_data.py", description=__doc__.split("\n\n")[0])
    add_corpus_arguments(p, hours=1.0)
    args = p.parse_args(argv)
    check_corpus_arguments(args)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.time()
    split = select_voices(args.voices)
    check_split(split)
    audio_dir = args.audio_dir.resolve()
    num_train = max(1, round(args.hours * 3600 / SECONDS_PER_UTTERANCE))
    num_eval = max(args.min_eval_utts, round(EVAL_FRACTION * num_train))
    summary = []
    for name in SETS:
        utts = plan_set(name, split[name], num_train if name == "train" else num_eval, args.seed, audio_dir)
        d = build_set(args.out_dir / name, utts, args.nj)
        summary.append(summary_line(name, d, split[name]))
    print("\n".join(summary), flush=True)
    print(f"prepare_data.py: done in {time.time() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
