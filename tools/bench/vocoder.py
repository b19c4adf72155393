"""Benchmark vocoder speed and memory on CPU: real-time factor with 1 and 2 threads and the
peak memory that generation adds, for

  fast        this vocoder at its default settings (folded, batched, TorchScript loop)
  naive       the same weights, one Python step per sample group over the unfolded utterance
  torchaudio  torchaudio.models.WaveRNN.infer with the same GRU/fc/conditioning sizes
              (random weights: only its speed is measured), full band, one sample a step
  griffinlim  32 iterations of torchaudio's Griffin-Lim on the same mels

Usage: .venv/bin/python tools/bench/vocoder.py --model recipes/joe/exp/vocoder \\
           --data recipes/joe/data/test [--naive-seconds 8] [--torchaudio-seconds 1]

Real-time factor = generation seconds / audio seconds (mels in memory, no file writing;
the first utterance is generated once untimed, as the TorchScript loop compiles then).
fast and griffinlim run on every utterance of DATA; naive and torchaudio, being slow, on
the first utterances up to their --*-seconds of audio. Each (system, threads) runs in its
own process: "peak MB" is the growth of its peak resident memory (VmHWM) from after the
model is loaded to the end. The ratios at the end are of real-time factors, same threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SYSTEMS = ("fast", "naive", "torchaudio", "griffinlim")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(system: str, threads: int, model_dir: Path, data: Path, seconds: float) -> dict:
    import kaldiio
    import numpy as np
    import torch

    from speech.model_dir import load_model
    from speech.tts.generate import generate, naive
    from speech.tts.mel import griffin_lim
    from speech.tts.vocoder_dir import KIND

    torch.set_num_threads(threads)
    cfg, model = load_model(model_dir, KIND)
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    mels, total = [], 0.0
    for utt in sorted(feats):
        mel = np.array(feats[utt], dtype=np.float32)
        mels.append(mel)
        total += mel.shape[0] * cfg.mel.hop_length / cfg.mel.sample_rate
        if seconds and total >= seconds:
            break
    if system == "torchaudio":
        from torchaudio.models import WaveRNN

        m = cfg.model
        ta = WaveRNN(upsample_scales=_scales(cfg.mel.hop_length), n_classes=m.levels, hop_length=cfg.mel.hop_length,
                     n_res_block=m.cond_blocks, n_rnn=m.hidden, n_fc=m.fc, kernel_size=5, n_freq=m.n_mels,
                     n_hidden=m.cond_channels, n_output=m.cond_channels).eval()

        def run(mel):
            with torch.inference_mode():
                spec = torch.from_numpy(mel.T.copy()).unsqueeze(0)
                return ta.infer(spec, torch.tensor([mel.shape[0]]))[0]
    else:
        run = {"fast": lambda mel: generate(model, mel),
               "naive": lambda mel: naive(model, mel),
               "griffinlim": lambda mel: griffin_lim(mel, cfg.mel)}[system]
    run(mels[0][:20])  # compile / warm up, untimed
    base = peak_rss_mb()
    t0 = time.perf_counter()
    for mel in mels:
        run(mel)
    elapsed = time.perf_counter() - t0
    audio = sum(m.shape[0] for m in mels) * cfg.mel.hop_length / cfg.mel.sample_rate
    return {"system": system, "threads": threads, "utterances": len(mels), "audio_s": audio, "seconds": elapsed,
            "rtf": elapsed / audio, "peak_mb": peak_rss_mb() - base}


def _scales(hop: int) -> list[int]:
    """Three factors of the hop (200 -> 5, 5, 8): torchaudio's WaveRNN upsamples by their product."""
    primes, rest, f = [], hop, 2
    while rest > 1:
        while rest % f == 0:
            primes.append(f)
            rest //= f
        f += 1
    while len(primes) > 3:
        primes.sort()
        primes = [primes[0] * primes[1]] + primes[2:]
    return sorted(primes)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="vocoder model dir")
    p.add_argument("--data", type=Path, required=True, help="data dir of mels (the test set)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    p.add_argument("--naive-seconds", type=float, default=8.0, help="audio the naive loop generates")
    p.add_argument("--torchaudio-seconds", type=float, default=1.0, help="audio torchaudio's infer generates")
    p.add_argument("--child", nargs=2, metavar=("SYSTEM", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    limits = {"naive": args.naive_seconds, "torchaudio": args.torchaudio_seconds}
    if args.child:
        system, threads = args.child[0], int(args.child[1])
        print(json.dumps(child(system, threads, args.model, args.data, limits.get(system, 0.0))))
        return 0
    results = {}
    print(f"{'system':<11} {'threads':>7} {'utts':>5} {'audio s':>8} {'seconds':>8} {'RTF':>8} {'peak MB':>8}")
    for threads in args.threads:
        for system in args.systems:
            out = subprocess.run([sys.executable, __file__, "--model", str(args.model), "--data", str(args.data),
                                  "--naive-seconds", str(args.naive_seconds),
                                  "--torchaudio-seconds", str(args.torchaudio_seconds),
                                  "--child", system, str(threads)],
                                 capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
            if out.returncode:
                print(f"{system} with {threads} threads failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                return 1
            r = json.loads(out.stdout.splitlines()[-1])
            results[system, threads] = r
            print(f"{system:<11} {threads:>7} {r['utterances']:>5} {r['audio_s']:>8.1f} {r['seconds']:>8.1f} "
                  f"{r['rtf']:>8.3f} {r['peak_mb']:>8.0f}", flush=True)
    print()
    for threads in args.threads:
        fast = results.get(("fast", threads))
        if not fast:
            continue
        for other in ("naive", "torchaudio", "griffinlim"):
            if (other, threads) in results:
                ratio = results[other, threads]["rtf"] / fast["rtf"]
                how = f"{ratio:.1f}x faster than" if ratio >= 1 else f"{1 / ratio:.1f}x slower than"
                print(f"{threads} thread(s): fast is {how} {other} (RTF {fast['rtf']:.3f} against "
                      f"{results[other, threads]['rtf']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
