# Functions shared by the recipes' run.sh; source it after tools/parse_options.sh and path.sh.
#
#   run_stage N                 true when stage N lies within --stage .. --stop-stage
#   log N MESSAGE               a time-stamped progress line of stage N
#   compute_fbank_sets N SET..  fbank features (the default 80-dim config) of each data/SET in
#                               $nj jobs run by $cmd; arks in fbank/SET, logs in exp/make_fbank/SET
#   compute_mel_sets N SET..    the same for the TTS log-mels of $mel_config (speech compute-mel):
#                               arks in mel/SET, logs in exp/make_mel/SET
#   compute_mfcc_sets N SET..   MFCCs (../../conf/features/mfcc.yaml) of data/SET_mfcc, a copy of
#                               data/SET's tables (features of one kind per data dir, as Kaldi
#                               keeps data/SET_hires): the GMM-HMM's input
#   hmm_decode N NAME SET..     GMM-HMM decoding of data/SET_mfcc by exp/NAME through its graph
#                               exp/NAME/graph (speech make-graph-hmm), $decode_nj jobs of $cmd,
#                               at the word penalty of
#                               $word_penalties with the lowest data/dev_mfcc WER (ties: the
#                               smaller; the grid in exp/NAME/tune_dev, the pick in its
#                               best_penalty), into exp/NAME/decode_SET, scored
#   train_job LOG COMMAND..     a training COMMAND as one job of $cmd (speech launch): here, or one
#                               Slurm job of $num_nodes nodes x $ngpu GPUs (a process a GPU, data
#                               parallel), requeued after a time-limit warning; its output in LOG
#   one_job LOG COMMAND..       any other heavy COMMAND as one job: one process, one GPU if $ngpu > 0
#   gpu_cmd                     $cmd for the jobs of a stage that runs the acoustic model (decoding,
#                               LM tuning, CTC alignment): each asks for one GPU if $ngpu > 0
#   augment_train_set N         $augment_copies augmented copies of data/train (speech
#                               augment-data-dir: $augment_config, overrides $augment_opts, $seed)
#                               in data/train_augK_only, combined with data/train into
#                               data/train_augK ($asr_train, the BLSTM's training set)
train_job() {
  local log=$1; shift
  speech launch --cmd "$cmd" --ngpu "$ngpu" --num-nodes "$num_nodes" --log "$log" -- "$@"
}
one_job() {
  local log=$1; shift
  speech launch --cmd "$cmd" --ngpu "$([ "$ngpu" -gt 0 ] && echo 1 || echo 0)" --nproc 1 --log "$log" -- "$@"
}
augment_train_set() {
  local n=$1 only="data/${asr_train}_only"
  log "$n" "$augment_copies augmented copies of data/train ($augment_config $augment_opts) for the BLSTM: data/$asr_train"
  # shellcheck disable=SC2086  # $augment_opts: key=value words
  speech augment-data-dir data/train "$only" --copies "$augment_copies" --config "$augment_config" \
    --seed "$seed" --nj "$nj" --cmd "$cmd" $augment_opts
  # combined again only when the copies are newer: a rewrite would make its features stale
  if [ ! -f "data/$asr_train/spk2utt" ] || [ "$only/spk2utt" -nt "data/$asr_train/spk2utt" ]; then
    speech combine-data-dirs "data/$asr_train" data/train "$only"
  fi
}
gpu_cmd() { if [ "$ngpu" -gt 0 ]; then echo "$cmd --gpu 1"; else echo "$cmd"; fi; }
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
log() { echo "$(date '+%F %T') [stage $1] $2"; }
# _compute_sets N KIND DESCRIPTION SET.. [-- OPTION..]: speech compute-KIND of each data/SET
_compute_sets() {
  local n=$1 kind=$2 what=$3 s sets=()
  shift 3
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do sets+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for s in "${sets[@]}"; do
    log "$n" "$what for data/$s"
    speech "compute-$kind" "data/$s" --nj "$nj" --cmd "$cmd" --feat-dir "$kind/$s" --log-dir "exp/make_$kind/$s" "$@"
  done
}
compute_fbank_sets() { local n=$1; shift; _compute_sets "$n" fbank "80-dim fbank" "$@"; }
compute_mel_sets() { local n=$1; shift; _compute_sets "$n" mel "log-mels ($mel_config)" "$@" -- --config "$mel_config"; }
compute_mfcc_sets() {
  local n=$1 s f mfcc_sets=()
  shift
  for s in "$@"; do
    mkdir -p "data/${s}_mfcc"
    for f in wav.scp text utt2spk spk2utt segments utt2dur; do
      if [ -f "data/$s/$f" ]; then cp "data/$s/$f" "data/${s}_mfcc/$f"; fi
    done
    mfcc_sets+=("${s}_mfcc")
  done
  _compute_sets "$n" mfcc "13-dim MFCC" "${mfcc_sets[@]}" -- --config ../../conf/features/mfcc.yaml
}

hmm_decode() {
  local n=$1 name=$2 p wer s best="" best_wer=""
  shift 2
  for p in $word_penalties; do
    speech decode-hmm "exp/$name" data/dev_mfcc "exp/$name/tune_dev/penalty_$p" --nj "$decode_nj" --cmd "$cmd" --graph "exp/$name/graph" \
      --word-penalty "$p"
    wer=$(speech score data/dev_mfcc "exp/$name/tune_dev/penalty_$p" | awk '/^%WER/ {print $2}')
    if [ -z "$best" ] || awk -v a="$wer" -v b="$best_wer" 'BEGIN {exit !(a < b)}'; then best=$p; best_wer=$wer; fi
  done
  echo "$best" > "exp/$name/tune_dev/best_penalty"
  log "$n" "word penalty $best (dev WER $best_wer among penalties $word_penalties)"
  for s in "$@"; do
    log "$n" "decoding data/${s}_mfcc with exp/$name (HCLG, word penalty $best)"
    speech decode-hmm "exp/$name" "data/${s}_mfcc" "exp/$name/decode_$s" --nj "$decode_nj" --cmd "$cmd" --graph "exp/$name/graph" --word-penalty "$best"
    speech score "data/${s}_mfcc" "exp/$name/decode_$s"
  done
}
