"""Log-mel spectrograms of one utterance as several systems say it, stacked in one PNG.

``speech plot-spectrograms OUT.png NAME=WAV [NAME=WAV ...]`` draws one panel per waveform
(top to bottom in the order given), titled NAME: the log-mel of ``conf/tts/mel.yaml`` (the
features the vocoder is conditioned on, :class:`~speech.tts.mel.MelExtractor`), on one
colour scale and one time axis, so that a vocoder's smeared harmonics or noisy silences
show against the recording's. WAV is an audio file or a wav.scp value (``cmd |``); it is
resampled to the config's rate. ``--durations NAME=DIR --utt UTT`` draws on panel NAME the
token boundaries of utterance UTT from DIR/tokens and DIR/durations (``speech
tts-durations``' aligned ones of a data dir, or those ``speech synthesize`` predicted),
each token's label above its span. Drawn with matplotlib's Agg renderer (no display
needed), written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from speech.audio import load_wav_scp_entry
from speech.errors import SpeechError
from speech.fileio import atomic_path
from speech.tts.frontend import format_tokens
from speech.tts.mel import MelConfig, MelExtractor, load_mel_config
from speech.tts.tts_durations import read_durations

PANEL_HEIGHT_IN = 2.0


def plot_spectrograms(path: str | Path, panels: Sequence[tuple[str, np.ndarray]], cfg: MelConfig,
                      tokens: Mapping[str, Sequence[tuple[str, int]]] | None = None) -> None:
    """Write a PNG of stacked log-mel spectrograms: one panel per (title, float [N] samples
    at ``cfg.sample_rate``), sharing the time axis (seconds) and the colour scale (ln
    magnitude, the loudest bin of any panel at the top). ``tokens``: title -> (label,
    frames) of each token in turn, drawn as boundaries on that panel."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no display

    if not panels:
        raise ValueError("plot_spectrograms: no panels")
    extract = MelExtractor(cfg)
    mels = [extract(samples) for _, samples in panels]  # [T_i, n_mels]
    top = max(float(m.max()) for m in mels)
    seconds = max(len(s) for _, s in panels) / cfg.sample_rate
    fig = Figure(figsize=(10, PANEL_HEIGHT_IN * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (title, _), mel in zip(axes, panels, mels):
        # 80 dB of range (ln: 9.2) below the loudest bin: quieter detail is noise floor
        image = ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma", vmin=top - 9.2, vmax=top,
                          extent=(0, mel.shape[0] * cfg.hop_length / cfg.sample_rate, 0, cfg.n_mels),
                          interpolation="nearest")
        ax.set_title(title, loc="left", fontsize=10)
        frame = cfg.hop_length / cfg.sample_rate
        edge = 0
        for label, frames in (tokens or {}).get(title, ()):
            ax.axvline(edge * frame, color="white", linewidth=0.5, alpha=0.7)
            if frames:
                ax.text((edge + frames / 2) * frame, cfg.n_mels * 0.97, label, color="white", fontsize=6,
                        ha="center", va="top")
            edge += frames
        ax.set_ylabel("mel bin")
        ax.set_xlim(0, seconds)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes), label="ln magnitude", shrink=0.9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech plot-spectrograms", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path, help="the PNG to write")
    p.add_argument("panels", nargs="+", metavar="NAME=WAV", help="a panel's title and its audio")
    p.add_argument("--config", type=Path, help="mel config (default: the defaults of conf/tts/mel.yaml)")
    p.add_argument("--durations", action="append", default=[], metavar="NAME=DIR",
                   help="draw the token boundaries of DIR/tokens and DIR/durations on panel NAME (with --utt)")
    p.add_argument("--utt", help="the utterance of --durations")
    args = p.parse_args(argv)
    if args.durations and not args.utt:
        raise SpeechError("--durations needs --utt UTT: the utterance whose tokens to draw")
    if args.output.suffix.lower() != ".png":
        raise SpeechError(f"{args.output}: give a .png file name to write")
    cfg = load_mel_config(args.config) if args.config else MelConfig()
    panels = []
    for arg in args.panels:
        name, sep, wav = arg.partition("=")
        if not sep or not name or not wav:
            raise SpeechError(f"'{arg}': expected NAME=WAV, e.g. recording=data/wav/utt1.wav")
        panels.append((name, load_wav_scp_entry(wav, cfg.sample_rate)))
    tokens = {}
    for arg in args.durations:
        name, sep, where = arg.partition("=")
        if not sep or name not in {n for n, _ in panels}:
            raise SpeechError(f"--durations '{arg}': expected NAME=DIR with NAME one of the panels")
        table = read_durations(Path(where))
        if args.utt not in table:
            raise SpeechError(f"{where}/durations: no utterance '{args.utt}'")
        toks, frames = table[args.utt]
        tokens[name] = list(zip(format_tokens(toks).split(), frames))
    plot_spectrograms(args.output, panels, cfg, tokens)
    print(f"wrote {args.output}")
    return 0
