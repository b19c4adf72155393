"""Train a BLSTM-CTC acoustic model: ``speech train-asr``.

    speech train-asr --train-dir data/train --dev-dir data/dev --lang-dir data/lang \\
        --exp-dir exp/blstm_ctc --config conf/asr/blstm_ctc_small.yaml [key=value ...]

EXP_DIR becomes a model directory (config.yaml, model.safetensors of the best dev epoch,
tokens.txt, CMVN stats) plus checkpoint.pt (last epoch, for resuming) and log/train.log.
A killed run continues exactly where its last checkpoint left it (every
trainer.checkpoint_interval updates and each epoch end) when re-run; a finished one is skipped
unless --force.

Data parallel on N GPUs (or N CPU processes with gloo), one node or several:

    torchrun --nproc-per-node N -m speech train-asr ...      # or, in a Slurm job:
    srun --ntasks N --gpus-per-task 1 speech train-asr ...

Each rank trains on its share of every epoch's batches (max_frames is per rank).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from speech.asr.dataset import Batch, FeatureDataset
from speech.asr.frontend import Frontend
from speech.asr.inference import feature_loader, run_model
from speech.asr.model import BlstmCtc
from speech.asr.model_dir import AsrConfig, write_model_dir
from speech.asr.score import compute_error_stats
from speech.config import load_config
from speech.ctc import greedy_ctc_decode
from speech.data.datadir import FEATURE_CONFIG, GLOBAL_CMVN, MEL_CONFIG
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.features.augment import FeatureAugmenter
from speech.features.cmvn import read_stats
from speech.model_dir import WEIGHTS, save_weights
from speech.text.tokenizer import load_tokenizer
from speech.train import Trainer
from speech.train import experiment

log = logging.getLogger("speech.train_asr")


def summed_ctc_loss(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> torch.Tensor:
    """CTC loss summed over the batch; log_probs [B, T', V], out_lengths [B]."""
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), batch.targets, out_lengths, batch.target_lengths,
        blank=0, reduction="sum", zero_infinity=True,
    )


def ctc_loss(model: BlstmCtc, batch: Batch) -> tuple[torch.Tensor, int]:
    """Summed CTC loss over the batch and the number of utterances."""
    log_probs, out_lengths = model(batch.feats, batch.feat_lengths)
    return summed_ctc_loss(log_probs, out_lengths, batch), len(batch.utt_ids)


def evaluate(model: BlstmCtc, loader, device: torch.device) -> dict[str, float]:
    """Dev loss per utterance and greedy token error rate (%, spaces included)."""
    total, count = 0.0, 0
    refs: dict[str, list[int]] = {}
    hyps: dict[str, list[int]] = {}
    for batch, log_probs, out_lengths in run_model(model, loader, device):
        total += summed_ctc_loss(log_probs, out_lengths, batch).item()
        count += len(batch.utt_ids)
        for i, (utt, hyp) in enumerate(zip(batch.utt_ids, greedy_ctc_decode(log_probs, out_lengths))):
            refs[utt] = batch.targets[i, : batch.target_lengths[i]].tolist()
            hyps[utt] = hyp
    return {"loss": total / count, "cer": compute_error_stats(refs, hyps).error_rate}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech train-asr", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-dir", type=Path, required=True, help="training data dir with feats.scp and cmvn_global.ark")
    p.add_argument("--dev-dir", type=Path, required=True, help="dev data dir with feats.scp (selects the best epoch)")
    p.add_argument("--lang-dir", type=Path, required=True, help="directory with tokens.txt (speech prepare-lang)")
    experiment.add_arguments(p, "YAML config (conf/asr/*.yaml)", "trainer.epochs=5 model.hidden_size=320")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    exp = args.exp_dir
    # everything is checked before --force removes a trained model: a typo in a key must
    # not cost the experiment
    cfg = load_config(AsrConfig, args.config, args.overrides)
    cfg.trainer.validate()
    if cfg.trainer.metric not in ("loss", "cer"):
        raise SpeechError(f"trainer.metric must be 'loss' or 'cer' (got '{cfg.trainer.metric}')")
    for data_dir in (args.train_dir, args.dev_dir):
        if not (data_dir / FEATURE_CONFIG).is_file():
            if (data_dir / MEL_CONFIG).is_file():
                raise SpeechError(f"{data_dir}: its feats.scp holds TTS log-mels ({MEL_CONFIG}, speech compute-mel), "
                                  "not ASR features; run speech compute-fbank on a copy of the data dir")
            raise SpeechError(f"{data_dir}: no features yet; run speech compute-fbank {data_dir} first")
    cfg.features = load_config(FeatureConfig, args.train_dir / FEATURE_CONFIG)
    tokens = load_tokenizer(args.lang_dir)
    stats = read_stats(args.train_dir / GLOBAL_CMVN) if cfg.cmvn == "global" else None
    frontend = Frontend(cfg.features, cfg.cmvn, stats)
    augmenter = FeatureAugmenter(cfg.augment, cfg.trainer.seed) if cfg.augment.enabled else None
    train_set = FeatureDataset(args.train_dir, frontend, tokens, augmenter)
    dev_set = FeatureDataset(args.dev_dir, frontend, tokens)
    # the stored features say how wide they are (81 with use_energy, 39 with deltas, ...)
    cfg.model.input_dim = train_set.feature_dim()
    if dev_set.feature_dim() != cfg.model.input_dim:
        raise SpeechError(f"{args.dev_dir}/feats.scp: features of dimension {dev_set.feature_dim()}, but "
                          f"{args.train_dir}/feats.scp has {cfg.model.input_dim}; compute both with one config")
    cfg.model.vocab_size = len(tokens.table)
    if experiment.finished(exp, args.force, WEIGHTS, "speech train-asr"):
        return 0
    dist, device = experiment.start(exp, args.device, cfg.num_threads)

    if dist.is_main:
        write_model_dir(exp, cfg, tokens, args.lang_dir, stats)

    torch.manual_seed(cfg.trainer.seed)  # the same initial weights on every rank and every run
    model = BlstmCtc(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    train_loader = feature_loader(train_set, cfg.max_frames, cfg.max_batch, shuffle=True, seed=cfg.trainer.seed,
                                  rank=dist.rank, world_size=dist.world_size)
    dev_loader = feature_loader(dev_set, cfg.max_frames, cfg.max_batch)
    log.info("training %s: %d parameters on %s x %d; %d train / %d dev utterances; %d batches per epoch "
             "per rank, %.1f%% padded frames", exp, n_params, device, dist.world_size, len(train_set),
             len(dev_set), len(train_loader.batch_sampler), 100 * train_loader.batch_sampler.padded_fraction())

    def loss_fn(m, batch):
        return ctc_loss(m, batch.to(device))

    trainer = Trainer(model, cfg.trainer, exp, device, loss_fn,
                      validate_fn=lambda m: evaluate(m, dev_loader, device),
                      on_best=lambda m: save_weights(m, exp / WEIGHTS), dist=dist)
    experiment.fit(trainer, experiment.EpochBatches(train_loader, train_set), exp, dist)
    return 0
