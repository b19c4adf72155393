"""``speech augment-data-dir SRC DEST``: every utterance of SRC rendered again, ``--copies``
times, as a pseudo-speaker in a drawn room, with drawn noise and channel (speech.augment).

    speech augment-data-dir SRC DEST [--config conf/augment/default.yaml] [--copies 1] [--seed 0]
                            [--nj N --cmd CMD] [--force] [key=value ...]

Copy K of utterance U of speaker S is ``augK-U`` of speaker ``augK-S`` (Kaldi's ``rvb1-``
convention: the speaker prefix rule holds, and each copy's speaker is a speaker of its own
for CMVN). Within copy K every speaker is one pseudo-speaker (its F0 scale and envelope
warp drawn once from the seed, K and S), so ``--copies`` is the number of pseudo-speakers
made of each voice; the room, noise and channel are drawn per utterance. Every draw comes
from a generator seeded by (seed, K, the utterance or speaker id): the output does not
depend on ``--nj`` or on the order of the work, and a re-run makes the same audio.

DEST gets ``wav/<utt>.flac`` (16-bit, the config's sample rate, each utterance's length
kept), ``wav.scp``, ``utt2spk``, ``spk2utt``, ``text``, ``utt2dur`` and ``augment_params``
(``<utt> what was drawn``, e.g. ``f0=1.12 warp=0.94 rt60=0.41 noise=babble:12.3dB
channel=mp3:0.70``), and ``augment.yaml`` (the config, seed and copies). A killed run
resumes: its finished flac files are kept while the config is the same.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from speech.augment.room import Room, RoomConfig, draw_room
from speech.augment.voice import PseudoSpeaker
from speech.config import load_config, read_mapping
from speech.data import split_stage
from speech.data.datadir import FEATURE_DESCRIPTIONS, DataDir, iter_utterance_audio
from speech.errors import SpeechError
from speech.fileio import atomic_path, atomic_write, read_key_value, write_key_value
from speech.stage import skip

CONFIG = "augment.yaml"
PARAMS = "augment_params"
TABLES = ("wav.scp", "utt2spk", "text", "utt2dur", PARAMS)


@dataclass
class VoiceConfig:
    prob: float = 1.0  # share of speakers re-synthesised as a pseudo-speaker (the rest keep their voice)
    f0_min: float = 0.7  # F0 scale drawn log-uniformly from [min, max]
    f0_max: float = 1.4
    warp_min: float = 0.88  # spectral envelope warp, log-uniform
    warp_max: float = 1.14


@dataclass
class RoomAugConfig(RoomConfig):
    prob: float = 0.5


@dataclass
class NoiseConfig:
    prob: float = 0.5
    kinds: list[str] = field(default_factory=lambda: ["coloured", "babble", "hum"])
    snr_min: float = 5.0  # dB, drawn uniformly
    snr_max: float = 25.0
    colour_min: float = 0.0  # coloured noise's 1/f exponent: 0 white, 1 pink, 2 brown
    colour_max: float = 2.0
    babble_min: int = 3  # talkers of babble
    babble_max: int = 6


@dataclass
class ChannelConfig:
    prob: float = 0.3
    kinds: list[str] = field(default_factory=lambda: ["telephone", "mp3", "opus"])
    compression_min: float = 0.3  # libsndfile's codec compression level, drawn uniformly
    compression_max: float = 1.0


@dataclass
class AugmentConfig:
    sample_rate: int = 16000
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    room: RoomAugConfig = field(default_factory=RoomAugConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)

    def check(self) -> None:
        for name, kinds, known in (("noise", self.noise.kinds, ("coloured", "babble", "hum")),
                                   ("channel", self.channel.kinds, ("telephone", "mp3", "opus"))):
            bad = [k for k in kinds if k not in known]
            if bad or not kinds:
                raise SpeechError(f"{name}.kinds {kinds}: give one or more of {', '.join(known)}")
        for name in ("voice", "room", "noise", "channel"):
            if not 0 <= getattr(self, name).prob <= 1:
                raise SpeechError(f"{name}.prob must lie in [0, 1] (got {getattr(self, name).prob})")


def _rng(seed: int, copy: int, key: str, stream: int) -> np.random.Generator:
    # zlib.crc32, not hash(): Python salts str hashes per process
    return np.random.default_rng([seed, copy, zlib.crc32(key.encode()), stream])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


@dataclass(frozen=True)
class Plan:
    """What one augmented copy of an utterance gets, drawn before any audio is made."""

    pseudo: PseudoSpeaker | None
    room: Room | None
    noise: tuple[str, float, float, int] | None  # (kind, SNR dB, coloured noise's exponent, seed)
    talkers: tuple[str, ...]  # babble's utterances
    channel: tuple[str, float] | None  # (kind, codec compression)

    def describe(self) -> str:
        drawn = []
        if self.pseudo is not None:
            drawn.append(f"f0={self.pseudo.f0_scale:.3f} warp={self.pseudo.warp:.3f}")
        if self.room is not None:
            drawn.append(f"rt60={self.room.rt60:.2f} room={'x'.join(f'{s:.1f}' for s in self.room.size)}")
        if self.noise is not None:
            kind, snr, exponent, _ = self.noise
            drawn.append(f"noise={kind}{f'{exponent:.1f}' if kind == 'coloured' else ''}:{snr:.1f}dB")
        if self.channel is not None:
            kind, compression = self.channel
            drawn.append(f"channel={kind}" + (f":{compression:.2f}" if kind != "telephone" else ""))
        return " ".join(drawn) or "none"


class Augmenter:
    """Draws and renders the augmented copies of one source data dir's utterances."""

    def __init__(self, src: DataDir, cfg: AugmentConfig, seed: int):
        self.src, self.cfg, self.seed = src, cfg, seed
        self.utts = src.utterances()

    def plan(self, utt: str, copy: int) -> Plan:
        """Copy ``copy`` of ``utt``: its speaker's pseudo-speaker, then its own draws."""
        cfg = self.cfg
        speaker = self.src.utt2spk[utt]
        srng = _rng(self.seed, copy, speaker, 0)
        pseudo = None
        if srng.uniform() < cfg.voice.prob:
            pseudo = PseudoSpeaker(_log_uniform(srng, cfg.voice.f0_min, cfg.voice.f0_max),
                                   _log_uniform(srng, cfg.voice.warp_min, cfg.voice.warp_max))
        rng = _rng(self.seed, copy, utt, 1)
        room = draw_room(rng, cfg.room) if rng.uniform() < cfg.room.prob else None
        noise, talkers = None, ()
        if rng.uniform() < cfg.noise.prob:
            kind = str(rng.choice(cfg.noise.kinds))
            noise = (kind, float(rng.uniform(cfg.noise.snr_min, cfg.noise.snr_max)),
                     float(rng.uniform(cfg.noise.colour_min, cfg.noise.colour_max)), int(rng.integers(2 ** 32)))
            if kind == "babble":  # other speakers' utterances (any, when there is one speaker)
                others = [u for u in self.utts if self.src.utt2spk[u] != speaker] or self.utts
                count = min(len(others), int(rng.integers(cfg.noise.babble_min, cfg.noise.babble_max + 1)))
                talkers = tuple(others[i] for i in sorted(rng.choice(len(others), size=count, replace=False)))
        channel = None
        if rng.uniform() < cfg.channel.prob:
            channel = (str(rng.choice(cfg.channel.kinds)),
                       float(rng.uniform(cfg.channel.compression_min, cfg.channel.compression_max)))
        return Plan(pseudo, room, noise, talkers, channel)

    def render(self, plan: Plan, samples: np.ndarray) -> np.ndarray:
        """float32 [N]: ``samples`` [N] through the plan: voice, room, noise, channel."""
        from speech.augment import channel, level, noise, room, voice

        rate = self.cfg.sample_rate
        if plan.pseudo is not None:
            samples = voice.resynthesize(samples, rate, plan.pseudo)
        if plan.room is not None:
            samples = room.reverberate(samples, room.impulse_response(plan.room, rate))
        if plan.noise is not None:
            kind, snr, exponent, seed = plan.noise
            rng = np.random.default_rng(seed)
            if kind == "coloured":
                n = noise.coloured_noise(rng, len(samples), exponent)
            elif kind == "hum":
                n = noise.hum(rng, len(samples), rate)
            else:
                n = noise.babble(rng, len(samples), [x for _, x in iter_utterance_audio(self.src, rate, plan.talkers)])
            samples = level.add_at_snr(samples, n, snr)
        if plan.channel is not None:
            kind, compression = plan.channel
            samples = (channel.telephone(samples, rate) if kind == "telephone"
                       else channel.codec(samples, rate, kind, compression))
        return samples


def render_part(src: DataDir, part: DataDir, cfg: AugmentConfig, seed: int, copies: int, wav_dir: Path,
                out_dir: Path) -> None:
    """Render ``part`` (a data dir of ``src``'s utterances) into ``wav_dir``; its tables into
    ``out_dir``. Flac files already there are kept (a resumed run: the same draws)."""
    import soundfile as sf

    augmenter = Augmenter(src, cfg, seed)
    tables: dict[str, dict[str, str]] = {name: {} for name in TABLES}
    wav_dir.mkdir(parents=True, exist_ok=True)
    for utt, samples in iter_utterance_audio(part, cfg.sample_rate):
        for copy in range(1, copies + 1):
            new = f"aug{copy}-{utt}"
            path = (wav_dir / f"{new}.flac").absolute()
            plan = augmenter.plan(utt, copy)
            if not path.is_file():
                audio = augmenter.render(plan, samples)
                peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
                with atomic_path(path) as tmp:
                    # a room or noise can push peaks past full scale; 16-bit flac would clip them
                    sf.write(tmp, audio / peak * 0.99 if peak > 0.99 else audio, cfg.sample_rate, format="FLAC",
                             subtype="PCM_16")
            tables["wav.scp"][new] = str(path)
            tables["utt2spk"][new] = f"aug{copy}-{part.utt2spk[utt]}"
            tables["utt2dur"][new] = f"{len(samples) / cfg.sample_rate:.3f}"
            tables[PARAMS][new] = plan.describe()
            if part.text is not None:
                tables["text"][new] = part.text[utt]
    for name, table in tables.items():
        if table or name != "text":
            write_key_value(out_dir / name, table)


def _merge(job_dirs: list[Path], dest: Path) -> None:
    for name in TABLES:
        split_stage.merge_lines(job_dirs, dest, name)


def _settings(cfg: AugmentConfig, seed: int, copies: int, src: Path) -> dict:
    """augment.yaml's content, as YAML reads it back (tuples as lists)."""
    return json.loads(json.dumps({"source": str(src), "seed": seed, "copies": copies, **asdict(cfg)}))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech augment-data-dir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="source data directory (wav.scp, utt2spk, text)")
    p.add_argument("dest", type=Path, help="the augmented data directory to write")
    p.add_argument("--config", type=Path, help="YAML of AugmentConfig (default: its defaults)")
    p.add_argument("--copies", type=int, default=1, help="augmented copies of every utterance (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="render again even when DEST is complete")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. room.prob=1")
    split_stage.add_options(p)
    args = p.parse_intermixed_args(argv)  # overrides may come before or after the options
    cfg = load_config(AugmentConfig, args.config, args.overrides)
    cfg.check()
    if args.copies < 1:
        raise SpeechError(f"--copies {args.copies}: give 1 or more")
    if args.src.resolve() == args.dest.resolve():
        raise SpeechError(f"{args.dest}: the destination is the source; choose another directory")
    settings = _settings(cfg, args.seed, args.copies, args.src)
    src = DataDir.read(args.src)
    if not src.utt2spk:
        raise SpeechError(f"{args.src}/utt2spk: no utterances to augment; give a data directory that has some")
    if args.job is None:
        same = (args.dest / CONFIG).is_file() and read_mapping(args.dest / CONFIG) == settings
        if same and skip("augment-data-dir", f"{args.dest} is complete", [args.dest / "spk2utt"],
                         [args.src / n for n in ("wav.scp", "utt2spk", "text", "segments")], force=args.force):
            return 0
        if not same or args.force:  # other draws: no flac file of an earlier run may be kept
            shutil.rmtree(args.dest / "wav", ignore_errors=True)
        (args.dest / "spk2utt").unlink(missing_ok=True)
        args.dest.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.dest / CONFIG) as f:
            yaml.safe_dump(settings, f, sort_keys=False)
    dirs = split_stage.work_dirs("augment-data-dir", argv, args, args.src, args.dest, _merge, "augment")
    if dirs is not None:
        part, out = dirs
        out.mkdir(parents=True, exist_ok=True)
        render_part(src, DataDir.read(part), cfg, args.seed, args.copies, args.dest / "wav", out)
    if args.job is None:
        # the merged tables as a data dir of these tables alone (an earlier run's features go), spk2utt last
        def table(name: str) -> dict[str, str]:
            return read_key_value(args.dest / name, allow_empty_value=True)

        d = DataDir(path=args.dest, wav_scp=table("wav.scp"), utt2spk=table("utt2spk"),
                    text=table("text") if src.text is not None else None,
                    utt2dur={u: float(v) for u, v in table("utt2dur").items()})
        for name in FEATURE_DESCRIPTIONS:
            (args.dest / name).unlink(missing_ok=True)
        d.write()
        print(f"speech augment-data-dir: {len(d.utt2spk)} utterances ({args.copies} a source utterance) -> {args.dest}")
    return 0
