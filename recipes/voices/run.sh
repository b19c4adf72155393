#!/usr/bin/env bash
# Open-vocabulary English read speech: Harvard sentences, Austen and fortunes spoken by Debian's
# synthetic voices; test voices never heard in training, test sentences never in training text
# or the LM; plus a small real-speech test set (LibriVox). data -> fbank -> BLSTM-CTC ->
# greedy, lexicon + 3-gram LM (flashlight) and WFST (TLG) decoding -> WER on dev, test, real; the
# GMM-HMM baseline (monophones, tree-tied triphones) on the same data and LM; phone alignment
# accuracy against festival's own times; one table of all four systems.
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
augment_copies=0  # > 0: the BLSTM also trains on this many augmented copies of data/train (augment-data-dir)
augment_config=../../conf/augment/default.yaml
augment_opts=""   # overrides of the augmentation config, e.g. "room.prob=0 noise.prob=0" (the ablations)
mono_config=../../conf/hmm/mono.yaml  # Kaldi's train_mono.sh sizes (1000 Gaussians)
tri_config=../../conf/hmm/tri_voices.yaml  # train_deltas.sh's 2000 leaves, 4000 Gaussians (chosen on dev: 35.56 % WER, 45.21 % with 10000)
word_penalties="0 4 8"                # the GMM-HMMs' word insertion penalties tried on dev
align_utts=120                        # festival sentences (kal, ked) the aligners are scored on
adapt_tau=10                          # align-hmm's second pass, MAP-adapted means (0: off; chosen on a fortunes reference: 0/10/20/50 -> 78.3/79.3/78.7/78.3 %)
# align-hmm --boundary-offsets: per boundary kind (manner class pairs), fitted on festival kal reading
# Austen; chosen on a fortunes reference (make-align-ref --source fortunes --seed 1: kal+ked, 120
# sentences): within 20 ms 80.9 % without, 84.0 % with one overall offset, 87.0 % with an offset per
# pair (fitted on fortunes by kal and slt-hts instead: 85.5 %)
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--decode-nj N] [--cmd local|slurm] [--ngpu N] [--num-nodes N]
             [--device cpu|cuda|auto]
             [--hours H] [--seed S] [--lm-order N] [--tune-beam N] [--beam N] [--lm-weights W,W] [--word-scores S,S]
             [--epochs N] [--asr-config YAML] [--exp DIR] [--augment-copies K] [--augment-config YAML]
             [--augment-opts \"key=value ..\"] [--mono-config YAML] [--tri-config YAML]
             [--word-penalties \"P P\"] [--align-utts N] [--adapt-tau T]
stages: 0 data (synthetic + real)  1 (augmented copies +) fbank+CMVN  2 tokens, lexicon, LM, graph  3 train
        4 tune LM weights on dev; decode (greedy, lexicon+LM, WFST)+score; pick the best on dev
        5 MFCC, phone lexicon  6 monophone GMM-HMM, HCLG, decode  7 triphones, HCLG, decode
        8 phone/word alignment accuracy (HMM and CTC aligners)  9 PocketSphinx on data/real, RESULTS.md"
. ../../tools/parse_options.sh
. ./path.sh
. ../../tools/recipe_lib.sh
decode_nj=${decode_nj:-$nj}

sets="train dev test real"
eval_sets="dev test real"
asr_train=train   # the BLSTM's training set: data/train, or it and its augmented copies
[ "$augment_copies" -gt 0 ] && asr_train="train_aug$augment_copies"

lm="data/local/lm_${lm_order}gram.arpa"

if run_stage 0; then
  log 0 "real-speech test set (LibriVox) into data/real"
  python local/prepare_real.py --out-dir data/real --cache-dir corpus/real
  log 0 "generating the voices corpus ($hours h of training speech) into data/"
  python local/prepare_data.py --out-dir data --audio-dir corpus --hours "$hours" --seed "$seed" --nj "$nj" \
    --exclude-text data/real/text
  for s in $sets; do speech validate-data-dir "data/$s"; done
fi

if run_stage 1; then
  if [ "$asr_train" != train ]; then augment_train_set 1; fi
  compute_fbank_sets 1 $sets $([ "$asr_train" = train ] || echo "$asr_train")
  speech compute-cmvn-stats "data/$asr_train"
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
  train_job "$exp/log/launch.log" speech train-asr --train-dir "data/$asr_train" --dev-dir data/dev --lang-dir data/lang \
    --exp-dir "$exp" --config "$asr_config" --device "$device" trainer.epochs="$epochs"
fi

if run_stage 4; then
  log 4 "tuning the LM weight and word score of the lexicon search on dev"
  speech tune-lm "$exp" data/dev "$exp/tune_lm" --nj "$decode_nj" --cmd "$(gpu_cmd)" --lexicon data/lang/lexicon.txt --lm "$lm" --beam-size "$tune_beam" \
    --lm-weights "$lm_weights" --word-scores "$word_scores" --device "$device"
  for s in $eval_sets; do
    log 4 "greedy decoding of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_$s" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device"
    speech score "data/$s" "$exp/decode_$s"
    log 4 "lexicon beam search with the ${lm_order}-gram LM (flashlight, tuned weights) of data/$s"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_lm" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device" --lexicon data/lang/lexicon.txt \
      --lm "$lm" --lm-params "$exp/tune_lm/best.yaml" --beam-size "$beam"
    speech score "data/$s" "$exp/decode_${s}_lm"
    log 4 "WFST search of data/$s through data/graph/TLG.fst (the same lexicon, LM and weights, Kaldi's decoder)"
    speech decode-asr "$exp" "data/$s" "$exp/decode_${s}_wfst" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device" --graph data/graph \
      --lm-params "$exp/tune_lm/best.yaml"
    speech score "data/$s" "$exp/decode_${s}_wfst"
  done
  log 4 "the search with the best dev WER -> $exp/decoding.yaml, what speech transcribe --model $exp uses"
  speech pick-decoding "$exp" "$exp/decode_dev" "$exp/decode_dev_lm" "$exp/decode_dev_wfst"
fi

if run_stage 5; then
  compute_mfcc_sets 5 $sets
  log 5 "phone lexicon (CMUdict, G2P for the rest) of every LM-text word for the GMM-HMM"
  speech prepare-lang data/local/lm_text data/lang_phone --unit phone
fi

if run_stage 6; then
  log 6 "monophone GMM-HMM from a flat start in exp/mono ($mono_config; log: exp/mono/log/train.log)"
  speech train-mono data/train_mfcc data/lang_phone exp/mono --config "$mono_config" --nj "$nj" --cmd "$cmd"
  log 6 "HCLG of exp/mono with the ${lm_order}-gram LM (the CTC system's)"
  speech make-graph-hmm exp/mono exp/mono/graph --lm "$lm"
  hmm_decode 6 mono $eval_sets
fi

if run_stage 7; then
  log 7 "tree-tied triphones on the monophones' alignments in exp/tri ($tri_config)"
  speech train-tri data/train_mfcc data/lang_phone exp/mono exp/tri --config "$tri_config" --nj "$nj" --cmd "$cmd"
  log 7 "HCLG of exp/tri with the ${lm_order}-gram LM"
  speech make-graph-hmm exp/tri exp/tri/graph --lm "$lm"
  hmm_decode 7 tri $eval_sets
fi

if run_stage 8; then
  log 8 "alignment accuracy: $align_utts Harvard sentences by festival kal and ked, against festival's own times"
  speech make-align-ref data/align_ref --num-utts "$align_utts" --seed "$seed"
  log 8 "boundary offsets of exp/tri, fitted on $align_utts Austen sentences by festival kal (a training voice)"
  speech make-align-ref data/align_fit --num-utts "$align_utts" --seed "$seed" --source austen --voices kal
  log 8 "... and $((align_utts / 2)) Harvard sentences by festival slt-hts, a voice labelled otherwise (HTS durations)"
  speech make-align-ref data/align_slt --num-utts $((align_utts / 2)) --seed "$seed" --voices slt-hts
  compute_mfcc_sets 8 align_ref align_fit align_slt
  compute_fbank_sets 8 align_ref
  speech align-hmm exp/tri data/align_fit_mfcc exp/tri/align_fit --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau"
  speech fit-boundary-offsets data/align_fit/phones.ctm exp/tri/align_fit/phones.ctm exp/tri/boundary_offsets.yaml
  offsets="--boundary-offsets exp/tri/boundary_offsets.yaml"
  speech align-hmm exp/tri data/align_ref_mfcc exp/tri/align_ref --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau"
  speech align-hmm exp/tri data/align_ref_mfcc exp/tri/align_ref_offsets --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau" $offsets
  speech align-hmm exp/tri data/align_slt_mfcc exp/tri/align_slt --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau"
  speech align-hmm exp/tri data/align_slt_mfcc exp/tri/align_slt_offsets --nj "$decode_nj" --cmd "$cmd" --adapt-tau "$adapt_tau" $offsets
  speech align "$exp" data/align_ref "$exp/align_ref" --nj "$decode_nj" --cmd "$(gpu_cmd)" --device "$device"
  {
    speech score-alignment data/align_ref/phones.ctm exp/tri/align_ref/phones.ctm --row "tri, phones" --header
    speech score-alignment data/align_ref/phones.ctm exp/tri/align_ref_offsets/phones.ctm --row "tri + offsets, phones"
    for voice in kal ked; do
      for ali in align_ref align_ref_offsets; do
        speech score-alignment data/align_ref/phones.ctm <(grep "^fest-${voice}_" "exp/tri/$ali/phones.ctm") \
          --row "tri$([ $ali = align_ref ] || echo " + offsets"), phones, $voice only"
      done
    done
    speech score-alignment data/align_slt/phones.ctm exp/tri/align_slt/phones.ctm --row "tri, phones, slt-hts"
    speech score-alignment data/align_slt/phones.ctm exp/tri/align_slt_offsets/phones.ctm \
      --row "tri + offsets, phones, slt-hts"
    speech score-alignment data/align_ref/words.ctm exp/tri/align_ref/words.ctm --row "tri, words"
    speech score-alignment data/align_ref/words.ctm exp/tri/align_ref_offsets/words.ctm --row "tri + offsets, words"
    speech score-alignment data/align_ref/words.ctm "$exp/align_ref/ctm" --row "BLSTM-CTC, words"
  } > exp/align_ref.md
  cat exp/align_ref.md
fi

if run_stage 9; then
  log 9 "the reference on data/real: PocketSphinx's US-English model, trained on real speech (tools/bench/pocketsphinx_wer.py)"
  mkdir -p exp/pocketsphinx
  python ../../tools/bench/pocketsphinx_wer.py data/real exp/pocketsphinx/decode_real | tee exp/pocketsphinx/summary
  log 9 "RESULTS.md"
  speech make-results exp -o RESULTS.md --title "voices: unseen-voice open-vocabulary English, and real LibriVox speech" \
    --systems mono tri "$(basename "$exp")"
  { echo; echo "Reference on the real set, a recogniser trained on real speech by others:"; echo
    echo "| system | real WER |"; echo "|---|---|"
    echo "| PocketSphinx 5 (US-English model, its 3-gram LM) | $(awk '/^%WER/ {print $2}' exp/pocketsphinx/decode_real/wer) % |"
  } >> RESULTS.md
  { echo; echo "Alignment of $align_utts festival sentences (kal, ked; stage 8) and $((align_utts / 2)) by slt-hts," \
      "boundaries against festival's times; offsets fitted on $align_utts other sentences by kal:"
    echo; cat exp/align_ref.md; } >> RESULTS.md
fi
