"""Train the duration-based TTS acoustic model: ``speech train-tts``.

    speech train-tts --train-dir data/train --dev-dir data/dev --exp-dir exp/tts \\
        --config conf/tts/acoustic_small.yaml [--vocoder exp/vocoder] [key=value ...]

Both data dirs need mels of one config (``speech compute-mel``) and the tokens and
durations of ``speech tts-durations``. The model (:mod:`speech.tts.acoustic`) is trained
teacher-forced on the aligned durations: the length regulator repeats each token for its
aligned frames, and the duration predictor learns those frames beside it. EXP_DIR becomes a
``kind: tts`` model dir (:mod:`speech.tts.tts_dir`) whose ``vocoder`` is ``--vocoder``
(stored relative to EXP_DIR; default Griffin-Lim), so that ``speech synthesize --model
EXP_DIR`` needs nothing else. A killed run resumes from its checkpoint; a finished one is
skipped unless --force. The shared trainer (:mod:`speech.train`) brings AMP on CUDA,
TensorBoard and data parallelism under torchrun/srun.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

from speech.config import load_config
from speech.errors import SpeechError
from speech.model_dir import WEIGHTS, save_model_config, save_weights
from speech.train import Trainer
from speech.train import experiment
from speech.tts.acoustic import AcousticModel, acoustic_loss
from speech.tts.frontend import POSITIONS, STRESS_LEVELS, TOKEN_SYMBOLS
from speech.tts.mel import MEL_CONFIG, check_same, load_mel_config, save_mel_config
from speech.tts.tts_data import TtsBatch, TtsDataset, tts_loader
from speech.tts.tts_dir import GRIFFIN_LIM, KIND, TtsConfig
from speech.tts.vocoder_dir import KIND as VOCODER_KIND

log = logging.getLogger("speech.train_tts")


def batch_loss(model: AcousticModel, batch: TtsBatch, duration_weight: float) -> tuple[torch.Tensor, int]:
    """The acoustic loss summed over the batch's frames, and their number."""
    out = model(batch.phones, batch.stress, batch.position, batch.token_lengths, batch.durations)
    loss, count, _ = acoustic_loss(out, batch.mel, batch.durations, batch.token_lengths, duration_weight)
    return loss, count


def evaluate(model: AcousticModel, loader, device: torch.device, duration_weight: float) -> dict[str, float]:
    """Dev loss per frame (the selection metric) and its parts: mel and postnet L1 of the
    normalised mels per frame, squared log-duration error per token."""
    total = {"loss": 0.0, "mel": 0.0, "post": 0.0, "duration": 0.0}
    frames = tokens = 0
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(device)
            out = model(batch.phones, batch.stress, batch.position, batch.token_lengths, batch.durations)
            loss, n, parts = acoustic_loss(out, batch.mel, batch.durations, batch.token_lengths, duration_weight)
            n_tokens = int(batch.token_lengths.sum())
            total["loss"] += loss.item()
            total["mel"] += parts["mel"] * n
            total["post"] += parts["post"] * n
            total["duration"] += parts["duration"] * n_tokens
            frames, tokens = frames + n, tokens + n_tokens
    return {key: value / (tokens if key == "duration" else frames) for key, value in total.items()}


def vocoder_entry(vocoder: str | None, exp: Path, mel_where: Path) -> str:
    """The ``vocoder`` of the model dir: griffinlim, or the vocoder dir relative to EXP_DIR,
    checked to be a vocoder of the same mels."""
    if vocoder in (None, GRIFFIN_LIM):
        return GRIFFIN_LIM
    from speech.model_dir import load_model_config

    path = Path(vocoder)
    load_model_config(path, VOCODER_KIND)  # one-line error for a dir of another kind
    check_same(load_mel_config(path / MEL_CONFIG), load_mel_config(mel_where), f"{path} (its {MEL_CONFIG})",
               str(mel_where))
    return os.path.relpath(path.resolve(), exp.resolve())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech train-tts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-dir", type=Path, required=True, help="training data dir with mels and durations")
    p.add_argument("--dev-dir", type=Path, required=True, help="dev data dir with mels and durations (selects the best epoch)")
    p.add_argument("--vocoder", help="vocoder model dir that synthesize uses with this model by default "
                                     "(default: griffinlim)")
    experiment.add_arguments(p, "YAML config (conf/tts/acoustic*.yaml)", "trainer.epochs=5 model.decoder_hidden=128")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    exp = args.exp_dir
    cfg = load_config(TtsConfig, args.config, args.overrides)  # checked before --force removes anything
    cfg.trainer.validate()
    if cfg.trainer.metric not in ("loss", "mel", "post", "duration"):
        raise SpeechError(f"trainer.metric must be loss, mel, post or duration (got '{cfg.trainer.metric}')")
    if cfg.max_frames <= 0 or cfg.max_batch <= 0:
        raise SpeechError(f"{args.config or 'config'}: max_frames and max_batch must be positive")
    for data_dir in (args.train_dir, args.dev_dir):
        if not (data_dir / MEL_CONFIG).is_file():
            raise SpeechError(f"{data_dir}: no mels yet; run speech compute-mel {data_dir} first")
    cfg.mel = load_mel_config(args.train_dir / MEL_CONFIG)
    check_same(load_mel_config(args.dev_dir / MEL_CONFIG), cfg.mel, f"{args.dev_dir}/feats.scp",
               f"{args.train_dir}/{MEL_CONFIG}")
    cfg.model.n_mels = cfg.mel.n_mels
    cfg.model.num_phones, cfg.model.num_stress, cfg.model.num_positions = (len(TOKEN_SYMBOLS), STRESS_LEVELS,
                                                                           POSITIONS)
    try:
        cfg.model.validate()
    except ValueError as e:
        raise SpeechError(f"{args.config or 'config'}: model: {e}") from None
    cfg.vocoder = vocoder_entry(args.vocoder, exp, args.train_dir / MEL_CONFIG)
    if experiment.finished(exp, args.force, WEIGHTS, "speech train-tts"):
        return 0

    train_set, dev_set = TtsDataset(args.train_dir), TtsDataset(args.dev_dir)
    dist, device = experiment.start(exp, args.device, cfg.num_threads)
    if dist.is_main:
        exp.mkdir(parents=True, exist_ok=True)
        save_model_config(exp, KIND, cfg)
        save_mel_config(cfg.mel, exp / MEL_CONFIG)

    torch.manual_seed(cfg.trainer.seed)  # the same initial weights on every rank and every run
    model = AcousticModel(cfg.model)
    mean, std = train_set.mel_stats()
    model.mel_mean.copy_(mean)
    model.mel_std.copy_(std)
    for d in (train_set, dev_set):
        d.normalise_with(mean, std)
    train_loader = tts_loader(train_set, cfg.max_frames, cfg.max_batch, shuffle=True, seed=cfg.trainer.seed,
                              rank=dist.rank, world_size=dist.world_size)
    dev_loader = tts_loader(dev_set, cfg.max_frames, cfg.max_batch)
    log.info("training %s: %d parameters on %s x %d; %d train / %d dev utterances; %d batches per epoch per rank",
             exp, sum(p.numel() for p in model.parameters()), device, dist.world_size, len(train_set), len(dev_set),
             len(train_loader.batch_sampler))
    weight = cfg.model.duration_weight
    trainer = Trainer(model, cfg.trainer, exp, device, lambda m, b: batch_loss(m, b.to(device), weight),
                      validate_fn=lambda m: evaluate(m, dev_loader, device, weight),
                      on_best=lambda m: save_weights(m, exp / WEIGHTS), dist=dist)
    experiment.fit(trainer, experiment.EpochBatches(train_loader, train_set), exp, dist)
    return 0
