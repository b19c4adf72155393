"""Waveforms from mels (copy-synthesis): ``speech vocode MODEL_DIR FEATS OUT_DIR``.

    speech vocode exp/vocoder data/test exp/vocoder/copy_test              # fast WaveRNN
    speech vocode exp/vocoder data/test/feats.scp out --naive               # reference loop
    speech vocode exp/vocoder data/test out_gl --vocoder griffinlim

FEATS is a data dir of mels (``speech compute-mel``) or its feats.scp; its mel.yaml must be
the model dir's. OUT_DIR gets one 16-bit wav per utterance under OUT_DIR/wav/, each
written chunk by chunk as it is generated (renamed into place when complete), and becomes
a data dir (wav.scp, plus text/utt2spk/spk2utt when FEATS's dir has them) that
``speech evaluate-tts`` and the recognisers read. A killed run keeps the finished wavs and
generates the rest when re-run. Griffin-Lim (32 iterations, torchaudio) is the baseline;
it needs no trained network, only the model dir's mel.yaml.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speech.audio import save_audio_stream
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.logs import setup_logging
from speech.model_dir import load_model
from speech.stage import read_done, write_done
from speech.tts.generate import GenerationConfig, naive, stream
from speech.tts.mel import MEL_CONFIG, griffin_lim
from speech.tts.vocoder_dir import KIND, check_mels

log = logging.getLogger("speech.vocode")

VOCODERS = ("wavernn", "griffinlim")
COPIED = ("text", "utt2spk", "spk2utt")  # what makes OUT_DIR a data dir of the same utterances


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech vocode", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="vocoder model dir (speech train-vocoder)")
    p.add_argument("feats", type=Path, help="data dir of mels, or its feats.scp")
    p.add_argument("out_dir", type=Path, help="output dir: wav/<utt>.wav and wav.scp")
    p.add_argument("--vocoder", choices=VOCODERS, default="wavernn")
    p.add_argument("--naive", action="store_true",
                   help="wavernn: the reference loop, one Python step per sample group, unfolded (slow)")
    defaults = GenerationConfig()
    for f in dataclasses.fields(GenerationConfig):
        if f.type in ("int", int):
            p.add_argument(f"--{f.name}", type=int, default=getattr(defaults, f.name),
                           help=f"folded generation: {f.name} (default {getattr(defaults, f.name)})")
    p.add_argument("--no-compile", action="store_true", help="the plain PyTorch loop instead of TorchScript")
    p.add_argument("--gl-iters", type=int, default=32, help="griffinlim: iterations (default 32)")
    p.add_argument("--seed", type=int, default=0, help="sampling noise seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    data_dir = args.feats.parent if args.feats.name == "feats.scp" else args.feats
    model = None
    if args.vocoder == "wavernn":
        _, model = load_model(args.model_dir, KIND)  # a dir of another kind is refused here
        model.to(resolve_device(args.device))
    elif not (args.model_dir / MEL_CONFIG).is_file():
        raise SpeechError(f"{args.model_dir}: no {MEL_CONFIG}; give a vocoder model dir (speech train-vocoder)")
    mel_cfg = check_mels(data_dir, args.model_dir)
    gen = GenerationConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GenerationConfig)
                              if f.type in ("int", int)}, compiled=not args.no_compile)
    try:
        gen.validate()
    except ValueError as e:
        raise SpeechError(str(e)) from None
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    setup_logging(None)

    out, wav_dir = args.out_dir, args.out_dir / "wav"
    done = out / "vocode.done"
    what = f"{args.vocoder}{' naive' if args.naive else ''}"
    if (read_done(done) or {}).get("vocoder") == what:
        print(f"speech vocode: {out} is complete ({what}); skipping (remove it to redo)")
        return 0
    feats = kaldiio.load_scp(str(data_dir / "feats.scp"))
    if not len(feats):
        raise SpeechError(f"{data_dir}/feats.scp: no utterances; run speech compute-mel {data_dir} on a data dir "
                          "with audio")
    wav_dir.mkdir(parents=True, exist_ok=True)
    entries, seconds, audio = {}, 0.0, 0.0
    for utt in sorted(feats):
        path = wav_dir / f"{utt}.wav"
        entries[utt] = str(path.resolve())
        if path.is_file():  # finished by an earlier run (written atomically)
            continue
        try:
            mel = np.asarray(feats[utt], dtype=np.float32)
        except Exception as e:  # a truncated or rewritten ark
            raise SpeechError(f"{data_dir}/feats.scp: cannot read the mels of '{utt}' ({e}); "
                              f"run speech compute-mel {data_dir} again") from None
        t0 = time.perf_counter()
        if model is None:
            chunks = [griffin_lim(mel, mel_cfg, args.gl_iters, args.seed)]
        elif args.naive:
            chunks = [naive(model, mel, args.seed)]
        else:
            chunks = stream(model, mel, gen, args.seed)
        n = save_audio_stream(path, chunks, mel_cfg.sample_rate)
        seconds += time.perf_counter() - t0
        audio += n / mel_cfg.sample_rate
    with atomic_write(out / "wav.scp") as f:
        f.writelines(f"{utt} {p}\n" for utt, p in entries.items())
    for name in COPIED:
        if (data_dir / name).is_file():
            shutil.copyfile(data_dir / name, out / name)
    rtf = seconds / audio if audio else None
    write_done(done, {"vocoder": what, "utterances": len(entries), "real_time_factor": rtf})
    log.info("%s: %d utterances (%s) in %s%s", out, len(entries), what, out / "wav",
             f", real-time factor {rtf:.3f} for the {audio:.1f} s generated now" if rtf else "")
    return 0
