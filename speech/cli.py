"""The ``speech`` command: one subcommand per stage module, nothing else.

Stage modules are imported only when their subcommand runs, so ``speech --help`` and the
light stages (data directories, features) start without importing torch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable, NoReturn

from speech.errors import PREEMPTED_EXIT, Preempted, SpeechError
from speech.logs import setup_logging

# subcommand -> (module:function taking argv, one-line description)
STAGES: dict[str, tuple[str, str]] = {
    "validate-data-dir": ("speech.data.validate:main", "check a Kaldi data directory; report file:line and the fix"),
    "fix-data-dir": ("speech.data.fix:main", "drop incomplete utterances, re-sort, regenerate spk2utt"),
    "subset-data-dir": ("speech.data.subset:main", "copy a subset of utterances/speakers to a new data directory"),
    "split-data-dir": ("speech.data.split:main", "split a data directory into N parts (by speaker or utterance)"),
    "combine-data-dirs": ("speech.data.combine:main", "combine several data directories into one"),
    "perturb-speed": ("speech.data.perturb_speed:main", "copies of a data directory at several speeds (sox)"),
    "augment-data-dir": ("speech.data.augment_data_dir:main",
                         "render a data dir again as pseudo-speakers in drawn rooms, noise and channels"),
    "get-utt2dur": ("speech.data.utt2dur:main", "write utt2dur (utterance durations in seconds)"),
    "launch": ("speech.jobs.launch:main", "one command as one job, here or on Slurm: --ngpu, --num-nodes, requeue"),
    "compute-fbank": ("speech.features.extract:main_fbank", "log-mel filterbank features to Kaldi ark/scp, N jobs"),
    "compute-mfcc": ("speech.features.extract:main_mfcc", "MFCC features to Kaldi ark/scp, N jobs"),
    "compute-mel": ("speech.tts.compute_mel:main", "TTS log-mel spectrograms (conf/tts/mel.yaml) to Kaldi ark/scp, N jobs"),
    "compute-cmvn-stats": ("speech.features.cmvn:main", "CMVN statistics per speaker and/or global"),
    "prepare-lang": ("speech.text.prepare_lang:main", "tokens.txt (char/BPE/phone, blank=0), lexicon and words.txt from text"),
    "train-lm": ("speech.lm.train_lm:main", "word n-gram LM in ARPA format (KenLM's lmplz, else Kneser-Ney in Python)"),
    "make-graph": ("speech.graph.make_graph:main", "WFST decoding graph TLG (CTC topology, lexicon, n-gram LM)"),
    "train-asr": ("speech.asr.train:main", "train a BLSTM-CTC acoustic model"),
    "decode-asr": ("speech.asr.decode:main", "decode a data directory: greedy CTC, lexicon beam search (+LM) or WFST"),
    "tune-lm": ("speech.asr.tune_lm:main", "choose LM weight and word score of the lexicon search on dev"),
    "align": ("speech.asr.align:main", "CTC forced alignment: word times and confidences (CTM, TextGrid)"),
    "make-align-ref": ("speech.data.festival_segments:main",
                       "festival speech with festival's own phone times: data dir + phones.ctm to score aligners"),
    "score-alignment": ("speech.alignment_score:main", "phone boundary errors of an alignment CTM against a reference"),
    "pick-decoding": ("speech.asr.pick_decoding:main", "record the search with the best dev WER in the model dir"),
    "score": ("speech.asr.score:main", "WER of a decode directory against reference text"),
    "make-results": ("speech.asr.results:main", "collect WERs of a recipe into RESULTS.md"),
    "transcribe": ("speech.asr.transcribe:main", "print the words spoken in audio files"),
    "train-mono": ("speech.hmm.train_mono:main", "train a monophone GMM-HMM from a flat start (Kaldi's train_mono.sh)"),
    "train-tri": ("speech.hmm.train_tri:main", "train tree-tied triphone GMM-HMMs on an earlier model's alignments"),
    "decode-hmm": ("speech.hmm.decode:main", "decode a data directory with a GMM-HMM through HCLG (kaldi-decoder)"),
    "make-graph-hmm": ("speech.hmm.make_graph:main", "build a GMM-HMM's decoding graph HCLG once (speech decode-hmm --graph)"),
    "align-hmm": ("speech.hmm.align_hmm:main", "GMM-HMM forced alignment: phone and word CTM/TextGrid, durations"),
    "fit-boundary-offsets": ("speech.boundary_offsets:main",
                             "an aligner's median bias at each kind of phone boundary, from a reference CTM"),
    "train-vocoder": ("speech.tts.train_vocoder:main", "train the multiband WaveRNN vocoder on ground-truth mels"),
    "vocode": ("speech.tts.vocode:main", "waveforms from mels (copy-synthesis): WaveRNN or Griffin-Lim"),
    "tts-frontend": ("speech.tts.frontend:main", "print what the TTS acoustic model is given for a text: words, phones, pauses"),
    "tts-durations": ("speech.tts.tts_durations:main",
                      "TTS training targets: the frontend's tokens and their mel frames from align-hmm's alignment"),
    "train-tts": ("speech.tts.train_tts:main", "train the duration-based recurrent TTS acoustic model"),
    "synthesize": ("speech.tts.synthesize:main", "speak text: frontend, acoustic model and vocoder to a wav"),
    "evaluate-durations": ("speech.tts.evaluate_durations:main",
                           "a TTS model's predicted phone durations against the aligned ones"),
    "evaluate-tts": ("speech.tts.evaluate:main", "synthesized speech: MCD against the recordings, WER by recognisers"),
    "plot-spectrograms": ("speech.tts.spectrogram:main", "stacked log-mel spectrograms of waveforms, as a PNG"),
}


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: speech <command> [options]   (speech <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a usage error, as an unknown command is; asking for --help is not
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from speech import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in STAGES:
        print(f"speech: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = STAGES[name][0].split(":")
    return run_main(getattr(importlib.import_module(module_name), func_name), rest, f"speech {name}")


def run_main(func: Callable[[list[str]], int | None], argv: list[str], prog: str) -> int:
    """``func(argv)``'s exit code; a SpeechError (a problem with the input) is printed as one
    line naming ``prog``, with code 1; Ctrl-C gives 130; a run stopped by a batch system's
    signal after its checkpoint (Preempted) gives PREEMPTED_EXIT (75)."""
    try:
        return int(func(argv) or 0)
    except SpeechError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except Preempted as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return PREEMPTED_EXIT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def run_script(func: Callable[[list[str]], int | None]) -> NoReturn:
    """The ``__main__`` of a recipe's local script: stage logging to stderr, then exit with
    :func:`run_main`'s code."""
    setup_logging()
    sys.exit(run_main(func, sys.argv[1:], Path(sys.argv[0]).name))


if __name__ == "__main__":
    sys.exit(main())
