#!/usr/bin/env bash
# Open-vocabulary English read speech: Harvard sentences, Austen and fortunes spoken by Debian's
# synthetic voices; test voices never heard in training, test sentences never in training text
# or the LM; plus a small real-speech test set (LibriVox). data -> fbank -> BLSTM-CTC ->
# greedy, lexicon + 3-gram LM (flashlight) and WFST (TLG) decoding -> WER on dev, test, real.
set -euo pipefail
cd "$(dirname "$0")"

stage=0           # first stage to run
stop_stage=100    # last stage to run
nj=2              # parallel jobs for data generation and features
cmd=local         # local, or "slurm --mem 4G ..." (../../conf/slurm.conf, see path.sh)
device=auto       # training/decoding device: cpu, cuda, auto
hours=3.0         # hours of training speech to generate (dev/test scale with it)
seed=0
lm_order=3
tune_beam=100             # lexicon search beam (hypotheses kept) while tuning the LM weights
beam=2000                 # ... and when decoding: with a 3-gram it finds the WFST's best path only at
                          # large beams (dev WER 32.5 / 31.0 / 30.2 at 100 / 500 / 2000, WFST 29.7)
lm_weights=0.5,0.75,1,1.5  # the grid tune-lm searches on dev (weights of ln p)
word_scores=-1,0,1,2
asr_config=../../conf/asr/blstm_ctc_small.yaml
epochs=30         # open-vocabulary characters need more passes than digits (dev CER at 15: 24.2 %, still falling)
exp=exp/blstm_ctc
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--cmd local|slurm] [--device cpu|cuda|auto]
             [--hours H] [--seed S] [--lm-order N] [--tune-beam N] [--beam N] [--lm-weights W,W] [--word-scores S,S]
             [--epochs N] [--asr-config YAML] [--exp DIR]
stages: 0 data (synthetic + real)  1 fbank+CMVN  2 tokens, lexicon, LM, graph  3 train
        4 tune LM weights on dev; decode (greedy, lexicon+LM, WFST)+score; pick the best on dev  5 RESULTS.md"
. ../../tools/parse_options.sh
. ./path.sh
. ../../tools/recipe_lib.sh

sets="train dev test real"
eval_sets="dev test real"

if run_stage 0; then
  log 0 "real-speech test set (LibriVox) into data/real"
  python local/prepare_real.py --out-dir data/real --cache-dir corpus/real
  log 0 "generating the voices corpus ($hours h of training speech) into data/"
  python local/prepare_data.py --out-dir data --audio-dir corpus --hours "$hours" --seed "$seed" --nj "$nj" \
    --exclude-text data/real/text
  for s in $sets; do speech validate-data-dir "data/$s"; done
fi

if run_stage 1; then
  compute_fbank_sets 1 $sets
  speech compute-cmvn-stats data/train
fi

if run_stage 2; then
  log 2 "characters and a lexicon of every word of the LM text (data/local/lm_text)"
  speech prepare-lang data/local/lm_text data/lang
  log 2 "${lm_order}-gram LM on the LM text; its perplexity on dev"
  speech train-lm data/local/lm_text "data/local/lm_${lm_order}gram.arpa" --order "$lm_order" --dev-text data/dev/text
  log 2 "WFST decoding graph TLG from the lexicon and the LM"
  speech make-graph data/lang data/graph --lm "data/local/lm_${lm_order}gram.arpa"
fi

if run_stage 3; then
  log 3 "training BLSTM-CTC in $exp (log: $exp/log/train.log)"
  speech train-asr --train-dir data/train --dev-dir data/dev --lang-dir data/lang \
    --exp-dir "$exp" --config "$asr_config" --device "$device" trainer.epochs="$epochs"
fi

if run_stage 4; then
  lm="data/local/lm_${lm_order}gram.arpa"
  log 4 "tuning the LM weight and word score of the lexicon search on dev"
  speech tune-lm "$exp" data/dev "$exp/tune_lm" --lexicon data/lang/lexicon.txt --lm "$lm" --beam-size "$tune_beam" \
    --lm-weights "$lm_weights" --word-scores "$word_scores" --device "$device"
  for s in $eval_sets; do
    log 4 "greedy decoding of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_$s" --device "$device"
    speech score "data/$s" "$exp/decode_$s"
    log 4 "lexicon beam search with the ${lm_order}-gram LM (flashlight, tuned weights) of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_lm" --device "$device" --lexicon data/lang/lexicon.txt \
      --lm "$lm" --lm-params "$exp/tune_lm/best.yaml" --beam-size "$beam"
    speech score "data/$s" "$exp/decode_${s}_lm"
    log 4 "WFST search of data/$s through data/graph/TLG.fst (the same lexicon, LM and weights, Kaldi's decoder)"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_wfst" --device "$device" --graph data/graph \
      --lm-params "$exp/tune_lm/best.yaml"
    speech score "data/$s" "$exp/decode_${s}_wfst"
  done
  log 4 "the search with the best dev WER -> $exp/decoding.yaml, what speech transcribe --model $exp uses"
  speech pick-decoding "$exp" "$exp/decode_dev" "$exp/decode_dev_lm" "$exp/decode_dev_wfst"
fi

if run_stage 5; then
  log 5 "RESULTS.md"
  speech make-results exp -o RESULTS.md --title "voices: unseen-voice open-vocabulary English, and real LibriVox speech"
fi
