#!/usr/bin/env bash
# Connected-digit recognition (TIDIGITS-style, spoken by Debian's synthetic voices):
# data -> fbank -> BLSTM-CTC -> greedy, lexicon and WFST decoding, and a GMM-HMM baseline (MFCC,
# monophones, tree-tied triphones, HCLG) on the same data -> WER on voices never heard in training.
set -euo pipefail
cd "$(dirname "$0")"

stage=0           # first stage to run
stop_stage=100    # last stage to run
nj=2              # parallel jobs for data generation and features
decode_nj=""       # jobs of decoding and alignment (a split of the data dir each; default: --nj)
cmd=local         # local, or "slurm --mem 4G ..." (../../conf/slurm.conf, see path.sh)
ngpu=0            # GPUs a training job asks for, per node (speech launch); more than one: data parallel
num_nodes=1       # nodes a training job spans (Slurm)
device=auto       # training/decoding device: cpu, cuda, auto
hours=1.0         # hours of training speech to generate (dev/test scale with it)
seed=0
asr_config=../../conf/asr/blstm_ctc_small.yaml
exp=exp/blstm_ctc
mono_config=../../conf/hmm/mono_digits.yaml
tri_config=../../conf/hmm/tri_digits.yaml
adapt_tau=20      # align-hmm's second pass, means MAP-adapted per speaker (0: off)
augment_copies=0  # > 0: the BLSTM also trains on this many augmented copies of data/train (augment-data-dir)
augment_config=../../conf/augment/default.yaml
augment_opts=""   # overrides of the augmentation config, e.g. "room.prob=0 noise.prob=0" (the ablations)
word_penalties="0 4 8 16"  # the GMM-HMMs' word insertion penalties tried on dev
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--decode-nj N] [--cmd local|slurm] [--ngpu N] [--num-nodes N]
             [--device cpu|cuda|auto]
             [--hours H] [--seed S] [--asr-config YAML] [--exp DIR] [--mono-config YAML] [--tri-config YAML]
             [--adapt-tau T] [--augment-copies K] [--augment-config YAML] [--augment-opts \"key=value ..\"]
stages: 0 data  1 (augmented copies +) fbank+CMVN  2 tokens+lexicon+graph  3 train  4 decode (greedy, lexicon, WFST)+score, pick the best on dev
        5 MFCC + phone lexicon  6 GMM-HMM monophones  7 triphones  8 phone alignment accuracy
        9 RESULTS.md (the systems compared)"
. ../../tools/parse_options.sh
. ./path.sh
. ../../tools/recipe_lib.sh
decode_nj=${decode_nj:-$nj}

sets="train dev test"
asr_train=train   # the BLSTM's training set: data/train, or it and its augmented copies
[ "$augment_copies" -gt 0 ] && asr_train="train_aug$augment_copies"

if run_stage 0; then
  log 0 "generating the digits corpus ($hours h of training speech) into data/"
  python local/prepare_data.py --out-dir data --audio-dir corpus --hours "$hours" --seed "$seed" --nj "$nj"
  for s in $sets; do speech validate-data-dir "data/$s"; done
fi

if run_stage 1; then
  if [ "$asr_train" != train ]; then augment_train_set 1; fi
  compute_fbank_sets 1 $sets $([ "$asr_train" = train ] || echo "$asr_train")
  speech compute-cmvn-stats "data/$asr_train"
fi

if run_stage 2; then
  log 2 "character tokens, lexicon and word list from data/train/text; word-loop decoding graph"
  speech prepare-lang data/train/text data/lang
  speech make-graph data/lang data/graph
fi

if run_stage 3; then
  log 3 "training BLSTM-CTC in $exp (log: $exp/log/train.log)"
  train_job "$exp/log/launch.log" speech train-asr --train-dir "data/$asr_train" --dev-dir data/dev --lang-dir data/lang \
    --exp-dir "$exp" --config "$asr_config" --device "$device"
fi

if run_stage 4; then
  for s in dev test; do
    log 4 "greedy decoding of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_$s" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device"
    speech score "data/$s" "$exp/decode_$s"
    log 4 "lexicon-constrained beam search (word loop, no LM) of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_lexicon" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device" --lexicon data/lang/lexicon.txt
    speech score "data/$s" "$exp/decode_${s}_lexicon"
    log 4 "WFST search of data/$s through data/graph/TLG.fst (the same word loop, Kaldi's decoder)"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_wfst" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device" --graph data/graph
    speech score "data/$s" "$exp/decode_${s}_wfst"
  done
  log 4 "the search with the best dev WER -> $exp/decoding.yaml, what speech transcribe --model $exp uses"
  speech pick-decoding "$exp" "$exp/decode_dev" "$exp/decode_dev_lexicon" "$exp/decode_dev_wfst"
fi

if run_stage 5; then
  compute_mfcc_sets 5 $sets
  log 5 "phone lexicon (CMUdict) of data/train/text for the GMM-HMM"
  speech prepare-lang data/train/text data/lang_phone --unit phone
fi

if run_stage 6; then
  log 6 "monophone GMM-HMM from a flat start in exp/mono ($mono_config; log: exp/mono/log/train.log)"
  speech train-mono data/train_mfcc data/lang_phone exp/mono --config "$mono_config" --nj "$nj" --cmd "$cmd"
  speech make-graph-hmm exp/mono exp/mono/graph
  hmm_decode 6 mono dev test
fi

if run_stage 7; then
  log 7 "tree-tied triphones on the monophones' alignments in exp/tri ($tri_config)"
  speech train-tri data/train_mfcc data/lang_phone exp/mono exp/tri --config "$tri_config" --nj "$nj" --cmd "$cmd"
  speech make-graph-hmm exp/tri exp/tri/graph
  hmm_decode 7 tri dev test
fi

if run_stage 8; then
  log 8 "alignment accuracy: 120 festival digit strings (kal, ked) against festival's own phone and word times"
  speech make-align-ref data/align_ref --source digits --num-utts 120 --seed "$seed"
  compute_mfcc_sets 8 align_ref
  compute_fbank_sets 8 align_ref
  speech align-hmm exp/tri data/align_ref_mfcc exp/tri/align_ref --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau"
  speech align exp/blstm_ctc data/align_ref exp/blstm_ctc/align_ref --nj "$decode_nj" --cmd "$(gpu_cmd)"
  {
    speech score-alignment data/align_ref/phones.ctm exp/tri/align_ref/phones.ctm --row "tri, phones" --header
    speech score-alignment data/align_ref/words.ctm exp/tri/align_ref/words.ctm --row "tri, words"
    speech score-alignment data/align_ref/words.ctm exp/blstm_ctc/align_ref/ctm --row "BLSTM-CTC, words"
  } > exp/align_ref.md
  cat exp/align_ref.md
fi

if run_stage 9; then
  log 9 "RESULTS.md"
  speech make-results exp -o RESULTS.md --title "digits: unseen-voice connected digits" \
    --systems mono tri blstm_ctc
  { echo; echo "Alignment of 120 festival digit strings (kal, ked; stage 8), boundaries against festival's times:"
    echo; cat exp/align_ref.md; } >> RESULTS.md
fi
