"""Train the multiband WaveRNN vocoder on ground-truth mels: ``speech train-vocoder``.

    speech train-vocoder --train-dir data/train --dev-dir data/dev --exp-dir exp/vocoder \\
        --config conf/tts/vocoder_small.yaml [key=value ...]

Both data dirs need mels of one config (``speech compute-mel``) beside wav.scp. EXP_DIR
becomes a ``kind: vocoder`` model dir (config.yaml, model.safetensors of the best dev loss,
mel.yaml) plus checkpoint.pt and log/train.log; a killed run resumes from its checkpoint,
a finished one is skipped unless --force. The shared trainer (:mod:`speech.train`) brings
AMP on CUDA, TensorBoard and data parallelism under torchrun/srun, as for train-asr.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from speech.config import load_config
from speech.errors import SpeechError
from speech.model_dir import WEIGHTS, save_model_config, save_weights
from speech.train import Trainer
from speech.train import experiment
from speech.tts.mel import MEL_CONFIG, check_same, load_mel_config, save_mel_config
from speech.tts.segments import SegmentBatch, Segments, Utterances
from speech.tts.vocoder import WaveRnn
from speech.tts.vocoder_dir import KIND, VocoderConfig

log = logging.getLogger("speech.train_vocoder")


def segment_loss(model: WaveRnn, batch: SegmentBatch) -> tuple[torch.Tensor, int]:
    """Cross-entropy summed over the batch's steps and bands, and their number."""
    logits = model(batch.mel, batch.prev)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.target.reshape(-1), reduction="sum")
    return loss, batch.target.numel()


def evaluate(model: WaveRnn, segments: Segments, device: torch.device) -> dict[str, float]:
    """Mean dev cross-entropy per subband sample (nats)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in segments:
            loss, n = segment_loss(model, batch.to(device))
            total += loss.item()
            count += n
    return {"loss": total / count}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech train-vocoder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-dir", type=Path, required=True, help="training data dir with mels (speech compute-mel)")
    p.add_argument("--dev-dir", type=Path, required=True, help="dev data dir with mels (selects the best epoch)")
    experiment.add_arguments(p, "YAML config (conf/tts/vocoder*.yaml)", "trainer.epochs=5 model.hidden=256")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    exp = args.exp_dir
    cfg = load_config(VocoderConfig, args.config, args.overrides)  # checked before --force removes anything
    cfg.trainer.validate()
    if cfg.trainer.metric != "loss":
        raise SpeechError(f"trainer.metric must be 'loss' for a vocoder (got '{cfg.trainer.metric}')")
    for data_dir in (args.train_dir, args.dev_dir):
        if not (data_dir / MEL_CONFIG).is_file():
            raise SpeechError(f"{data_dir}: no mels yet; run speech compute-mel {data_dir} first")
    cfg.mel = load_mel_config(args.train_dir / MEL_CONFIG)
    check_same(load_mel_config(args.dev_dir / MEL_CONFIG), cfg.mel, f"{args.dev_dir}/feats.scp",
               f"{args.train_dir}/{MEL_CONFIG}")
    cfg.model.n_mels, cfg.model.hop_length = cfg.mel.n_mels, cfg.mel.hop_length
    try:
        cfg.model.validate()
    except ValueError as e:
        raise SpeechError(f"{args.config or 'config'}: model: {e}") from None
    if experiment.finished(exp, args.force, WEIGHTS, "speech train-vocoder"):
        return 0

    dist, device = experiment.start(exp, args.device, cfg.num_threads)
    train = Utterances(args.train_dir, cfg.mel.sample_rate, cfg.mel.hop_length)
    dev = Utterances(args.dev_dir, cfg.mel.sample_rate, cfg.mel.hop_length)
    if dist.is_main:
        exp.mkdir(parents=True, exist_ok=True)
        save_model_config(exp, KIND, cfg)
        save_mel_config(cfg.mel, exp / MEL_CONFIG)

    torch.manual_seed(cfg.trainer.seed)  # the same initial weights on every rank and every run
    model = WaveRnn(cfg.model)
    model.mel_mean, model.mel_std = train.mel_stats()
    seed = cfg.trainer.seed
    # each rank draws its own segments: the seed list differs by rank
    batches = Segments(train, cfg.model, cfg.segment_frames, cfg.batch_size, cfg.updates_per_epoch * cfg.batch_size,
                       seed=seed * 1000 + dist.rank)
    dev_segments = Segments(dev, cfg.model, cfg.segment_frames, cfg.batch_size, cfg.dev_segments, seed=seed,
                            fixed=True)
    log.info("training %s: %d parameters on %s x %d; %d train / %d dev utterances; %d updates an epoch of %d "
             "segments of %d frames", exp, sum(p.numel() for p in model.parameters()), device, dist.world_size,
             len(train.ids), len(dev.ids), len(batches), cfg.batch_size, cfg.segment_frames)

    trainer = Trainer(model, cfg.trainer, exp, device, lambda m, b: segment_loss(m, b.to(device)),
                      validate_fn=lambda m: evaluate(m, dev_segments, device),
                      on_best=lambda m: save_weights(m, exp / WEIGHTS), dist=dist)
    experiment.fit(trainer, batches, exp, dist)
    return 0
