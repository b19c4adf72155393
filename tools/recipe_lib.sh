# Functions shared by the recipes' run.sh; source it after tools/parse_options.sh and path.sh.
#
#   run_stage N                 true when stage N lies within --stage .. --stop-stage
#   log N MESSAGE               a time-stamped progress line of stage N
#   compute_fbank_sets N SET..  fbank features (the default 80-dim config) of each data/SET in
#                               $nj jobs run by $cmd; arks in fbank/SET, logs in exp/make_fbank/SET
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
log() { echo "$(date '+%F %T') [stage $1] $2"; }
compute_fbank_sets() {
  local n=$1 s
  shift
  for s in "$@"; do
    log "$n" "80-dim fbank for data/$s"
    speech compute-fbank "data/$s" --nj "$nj" --cmd "$cmd" --feat-dir "fbank/$s" --log-dir "exp/make_fbank/$s"
  done
}
