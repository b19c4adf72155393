#!/usr/bin/env python3
"""Generate the voices corpus: open-vocabulary English read by synthetic voices (Debian's, and Piper's Joe).

Text: the sentences of speech.text.sentences (Harvard sentences, five Austen novels, fortunes),
normalised, 4-20 words each, shuffled with --seed and cut into disjoint pools: test and dev
sentences are never in training speech nor in the LM text. Sentences sharing four words in
a row with --exclude-text (the real-speech test transcripts) are dropped everywhere.

Speakers: speech.data.synth_corpus.HELD_OUT_SPLIT, so dev and test voices are people never
heard in training. Every utterance has its own speed (0.85-1.15) and pitch (+/- 2 semitones);
Joe's also its own Piper noise scales.

Writes <out-dir>/{train,dev,test} (wav.scp, text, utt2spk, spk2utt, utt2dur), wav files
under <audio-dir>/<set>/<speaker>/, and <out-dir>/local/lm_text: every sentence of the
training pool (spoken or not) as a Kaldi text, for the lexicon and the n-gram LM.
The same seed gives the same corpus; a finished set is skipped and a killed run resumes.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from pathlib import Path

from speech.cli import run_script
from speech.data.synth_corpus import (SETS, Utterance, add_corpus_arguments, allocate, build_set,
                                      check_corpus_arguments, check_split, draw_prosody, select_voices,
                                      summary_line)
from speech.data.synth_speakers import SynthSpeaker
from speech.errors import SpeechError
from speech.fileio import read_key_value, write_key_value
from speech.text.sentences import sentence_pool, split_pool

logger = logging.getLogger("prepare_data")

EVAL_FRACTION = 0.08  # dev and test each: this fraction of the training utterances
# duration ~ words * SECONDS_PER_WORD + SECONDS_PER_UTTERANCE_EDGES: a least-squares fit
# over a 0.155 h render of every training voice (speeds 0.85-1.15)
SECONDS_PER_WORD = 0.274
SECONDS_PER_UTTERANCE_EDGES = 0.40
NGRAM_EXCLUDE = 4  # a shared word 4-gram marks a sentence as overlapping the excluded text


def ngrams(words: list[str], n: int = NGRAM_EXCLUDE) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def drop_overlapping(pool: list[str], exclude: list[str]) -> list[str]:
    banned = set().union(*(ngrams(s.split()) for s in exclude)) if exclude else set()
    return [s for s in pool if not ngrams(s.split()) & banned]


def plan_set(name: str, voices: list[tuple[SynthSpeaker, float]], sentences: list[str], num_utts: int, seed: int,
             audio_dir: Path) -> list[Utterance]:
    """``num_utts`` utterances, each of a different sentence of ``sentences`` (taken in
    order), shared among ``voices`` by weight; speed and pitch from a per-speaker stream."""
    if num_utts > len(sentences):
        raise SpeechError(f"{name}: {num_utts} utterances wanted but only {len(sentences)} sentences; lower --hours")
    utts, next_sentence = [], 0
    for (voice, _), count in zip(voices, allocate(num_utts, [w for _, w in voices])):
        rng = random.Random(f"voices-{seed}-{name}-{voice.id}")
        for i in range(count):
            speed, pitch = draw_prosody(rng)
            utt_id = f"{voice.id}_{i:05d}"
            wav = audio_dir / name / voice.id / f"{utt_id}.wav"
            utts.append(Utterance(utt_id, voice, sentences[next_sentence], speed, pitch, wav))
            next_sentence += 1
    return utts


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_data.py", description=__doc__.split("\n\n")[0])
    add_corpus_arguments(p, hours=3.0)
    p.add_argument("--exclude-text", type=Path,
                   help="Kaldi text whose sentences must not be near any corpus or LM sentence (e.g. data/real/text)")
    args = p.parse_args(argv)
    check_corpus_arguments(args)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.time()
    split = select_voices(args.voices)
    check_split(split)
    exclude = list(read_key_value(args.exclude_text).values()) if args.exclude_text else []
    pool = drop_overlapping(list(sentence_pool()), exclude)
    mean_words = sum(len(s.split()) for s in pool) / len(pool)
    seconds_per_utt = mean_words * SECONDS_PER_WORD + SECONDS_PER_UTTERANCE_EDGES
    num_train = max(1, round(args.hours * 3600 / seconds_per_utt))
    num_eval = max(args.min_eval_utts, round(EVAL_FRACTION * num_train))
    pools = split_pool(pool, num_eval, f"voices-{args.seed}-sentences")
    audio_dir = args.audio_dir.resolve()
    summary = []
    for name in SETS:
        utts = plan_set(name, split[name], pools[name], num_train if name == "train" else num_eval, args.seed,
                        audio_dir)
        d = build_set(args.out_dir / name, utts, args.nj)
        summary.append(summary_line(name, d, split[name]))
    lm_text = {f"lm{i:06d}": s for i, s in enumerate(pools["train"])}
    write_key_value(args.out_dir / "local" / "lm_text", lm_text)
    summary.append(f"LM text: {len(lm_text)} sentences, {sum(len(s.split()) for s in lm_text.values())} words "
                   f"-> {args.out_dir / 'local' / 'lm_text'}")
    print("\n".join(summary), flush=True)
    print(f"prepare_data.py: done in {time.time() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
