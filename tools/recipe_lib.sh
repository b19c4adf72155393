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
