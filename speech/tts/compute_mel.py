"""Stage ``speech compute-mel``: the synthesis half's log-mels of a data dir in N jobs.

::

    speech compute-mel DATA_DIR [--config conf/tts/mel.yaml] [--nj N] [--cmd 'local'|'slurm ...']
                       [--log-dir DIR] [--feat-dir DIR] [--force] [key=value ...]

compute-fbank's machinery (speech.features.extract) with the mel of speech.tts.mel: audio
is read from wav.scp (and segments) resampled to the config's ``sample_rate``, job J writes
``<feat-dir>/raw_mel_<data name>.J.{ark,scp}`` (float32 matrices [frames, n_mels], frames
``1 + num_samples // hop_length``) and logs to ``<log-dir>/make_mel.J.log``; then
DATA_DIR/feats.scp, DATA_DIR/utt2num_frames and DATA_DIR/mel.yaml (the config, last), which
the vocoder and acoustic model compare with their own (:func:`speech.tts.mel.check_same`).
The ASR feature config (feature_config.yaml) is removed: ASR stages refuse mels.
A re-run skips when feats.scp covers every utterance with the same config, unless ``--force``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from speech.config import load_config
from speech.data.datadir import MEL_CONFIG
from speech.features.extract import FeatureKind, compute_features, job_main, stage_parser
from speech.tts.mel import MelConfig, MelExtractor, load_mel_config, save_mel_config


def _check(cfg: MelConfig) -> int:
    cfg.validate("mel config")
    return cfg.n_mels


MEL = FeatureKind(
    name="mel", config_file=MEL_CONFIG, job_module="speech.tts.compute_mel",
    load_config=load_mel_config, save_config=save_mel_config, check=_check, make_extractor=MelExtractor,
    frame_shift_seconds=lambda cfg: cfg.hop_length / cfg.sample_rate,
    # MelExtractor pads what is shorter than its window, so every utterance has a frame
    too_short=lambda cfg, seconds: f"{seconds:.3f} s of audio gave no mel frame",
)


def compute_mel(data_dir: str | Path, cfg: MelConfig, nj: int = 4, cmd: str = "local",
                log_dir: str | Path | None = None, feat_dir: str | Path | None = None, force: bool = False) -> bool:
    """Run the stage (see the module docstring) with a resolved ``cfg``; False when skipped."""
    return compute_features(data_dir, cfg, nj=nj, cmd=cmd, log_dir=log_dir, feat_dir=feat_dir, force=force, kind=MEL)


def main(argv: list[str]) -> int:
    parser = stage_parser(
        "mel", f"Compute the TTS log-mel spectrogram (speech.tts.mel) of a data directory in N jobs; writes "
        f"feats.scp, utt2num_frames and {MEL_CONFIG} into it. Skips when they are complete.",
        "mel config YAML (conf/tts/mel.yaml); default: built-in, the same values", "hop_length=256")
    args = parser.parse_intermixed_args(argv)
    cfg = load_config(MelConfig, args.config, args.overrides)
    cfg.validate(args.config or "mel config")
    compute_mel(args.data_dir, cfg, nj=args.nj, cmd=args.cmd, log_dir=args.log_dir, feat_dir=args.feat_dir,
                force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(job_main({"mel": MEL}, sys.argv[1:]))
