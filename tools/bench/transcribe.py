"""Benchmark decoding and transcription speed on CPU, and transcription memory on long files.

Usage: .venv/bin/python tools/bench/transcribe.py --model recipes/voices/exp/blstm_ctc \\
           --data recipes/voices/data/test --lang recipes/voices/data/lang \\
           [--lm recipes/voices/data/local/lm_3gram.arpa --graph recipes/voices/data/graph] \\
           [--minutes 10 60] [--threads 1]

1. Decoders on the same posteriors (the model run once over DATA's features), one thread:
   greedy CTC, the lexicon beam search (word loop), the lexicon beam search with the LM
   (beam 20, and beam 2000, where it finds the WFST's paths), and the WFST search through
   TLG with the same lexicon and LM. Without --lm, a bigram estimated on DATA's
   transcripts; without --graph, TLG is built from LANG and the LM.
   Real-time factor = decoding seconds over audio seconds (model time printed apart).
2. ``speech transcribe`` end to end (reading, VAD, features, model, lexicon search, word
   alignment, JSON output) on recordings of each ``--minutes`` length, made by repeating
   DATA's utterances between 1 s pauses: wall-clock RTF and the peak resident memory of the
   process. Flat memory means the peak barely grows from the shortest to the longest.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from speech.asr.dataset import FeatureDataset  # noqa: E402
from speech.asr.inference import feature_loader, run_model  # noqa: E402
from speech.asr.model_dir import load_model_dir  # noqa: E402
from speech.asr.search import make_search  # noqa: E402
from speech.cli import run_script  # noqa: E402
from speech.fileio import read_key_value  # noqa: E402
from speech.graph.make_graph import make_graph  # noqa: E402
from speech.lm.ngram import estimate, write_arpa  # noqa: E402


def decoder_rtf(model_dir: Path, data: Path, lang: Path, lm: Path | None, graph: Path | None, tmp: Path) -> None:
    loaded = load_model_dir(model_dir)
    dataset = FeatureDataset(data, loaded.frontend)
    t0 = time.perf_counter()
    outputs = [(lp.clone(), n.clone()) for _, lp, n in run_model(loaded.model, feature_loader(dataset, 40000), "cpu")]
    model_seconds = time.perf_counter() - t0
    audio = sum(dataset.lengths) * loaded.cfg.features.frame_shift_ms / 1000
    if lm is None:
        texts = [t.split() for t in read_key_value(data / "text", allow_empty_value=True).values()]
        lm = tmp / "bigram.arpa"
        write_arpa(lm, *estimate(texts, order=2))
    if graph is None:
        graph = tmp / "graph"
        make_graph(lang, graph, lm)
    print(f"{len(dataset)} utterances, {audio / 60:.1f} min of audio; model forward {model_seconds / audio:.4f} RTF")
    lexicon = lang / "lexicon.txt"
    searches = {
        "greedy": make_search(loaded.tokenizer, model_dir),
        "lexicon beam": make_search(loaded.tokenizer, model_dir, lexicon),
        f"lexicon beam + LM ({lm.name})": make_search(loaded.tokenizer, model_dir, lexicon, lm=lm),
        # the beam at which flashlight finds the WFST's paths (voices dev/test within 0.5 WER)
        "lexicon beam 2000 + LM": make_search(loaded.tokenizer, model_dir, lexicon, 2000, lm),
        "WFST (TLG, same LM)": make_search(loaded.tokenizer, model_dir, graph=graph),
    }
    base = None
    for name, search in searches.items():
        t0 = time.perf_counter()
        for lp, n in outputs:
            search(lp, n)
        rtf = (time.perf_counter() - t0) / audio
        base = base or rtf
        print(f"  {name:36s} RTF {rtf:.5f} ({rtf / base:.1f}x greedy)")


def long_recording(data: Path, minutes: float, out: Path) -> float:
    """DATA's utterances repeated between 1 s pauses up to ``minutes``; returns seconds."""
    wavs = list(read_key_value(data / "wav.scp").values())
    rate = sf.info(wavs[0]).samplerate
    pause = np.zeros(rate, dtype=np.float32)
    total = 0
    with sf.SoundFile(out, "w", rate, 1, subtype="PCM_16") as f:  # written as it grows: no big array here
        i = 0
        while total < minutes * 60 * rate:
            audio, _ = sf.read(wavs[i % len(wavs)], dtype="float32")
            f.write(pause)
            f.write(audio)
            total += len(pause) + len(audio)
            i += 1
    return total / rate


def transcribe_run(model_dir: Path, lexicon: Path, lm: Path | None, wav: Path, seconds: float, tmp: Path) -> None:
    code = (
        "import resource, sys\n"
        "from speech.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    cmd = [sys.executable, "-c", code, "transcribe", "--model", str(model_dir), "--lexicon", str(lexicon),
           "--format", "json", "--output-dir", str(tmp / "out"), str(wav)] + (["--lm", str(lm)] if lm else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    peak_mb = int(proc.stderr.strip().splitlines()[-1]) / 1024
    print(f"  {seconds / 60:5.1f} min: RTF {wall / seconds:.4f} (wall {wall:.1f} s, process start included), "
          f"peak RSS {peak_mb:.0f} MB")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="data dir with feats.scp, text and wav.scp")
    p.add_argument("--lang", type=Path, required=True, help="lang dir (tokens.txt, lexicon.txt)")
    p.add_argument("--lm", type=Path, help="ARPA LM (default: a bigram of DATA's transcripts)")
    p.add_argument("--graph", type=Path, help="graph dir made with LANG and the LM (default: built here)")
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decoder_rtf(args.model, args.data, args.lang, args.lm, args.graph, tmp)
        print(f"speech transcribe --lexicon{' --lm' if args.lm else ''} --format json, end to end:")
        for minutes in args.minutes:
            wav = tmp / f"{minutes:g}min.wav"
            seconds = long_recording(args.data, minutes, wav)
            transcribe_run(args.model, args.lang / "lexicon.txt", args.lm, wav, seconds, tmp)
            wav.unlink()
    return 0


if __name__ == "__main__":
    run_script(main)
