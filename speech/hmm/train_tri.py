"""``speech train-tri DATA_DIR LANG_DIR ALI_MODEL EXP_DIR``: cross-word triphones tied by a
phonetic decision tree, on MFCC + deltas, as Kaldi's steps/train_deltas.sh.

1. ALI_MODEL (a monophone or earlier system) aligns DATA_DIR (align_si.sh);
2. single-Gaussian statistics of every (left, phone, right, state) seen in those
   alignments (acc-tree-stats) grow the tree: ``train.num_leaves`` leaves by likelihood
   gain over hand-written phonetic questions (:mod:`speech.hmm.tree`, build-tree);
3. the alignments are converted to the tree's pdfs (convert-ali), one Gaussian per leaf is
   estimated from them (gmm-init-model), and :mod:`speech.hmm.train`'s EM loop realigns
   on ``train.realign_iters`` and mixes up to ``train.total_gaussians``.

Context is cross-word (Kaldi's C, through kaldifst.compose_context) and silence is a
context like any phone; the utterance edge is phone 0. Writes EXP_DIR as a model dir of
kind hmm with ``context_width: 3``; resumable as train-mono.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from speech.errors import SpeechError
from speech.hmm.model import HmmSystem, load_system, save_system
from speech.hmm.topology import SILENCE
from speech.hmm.train import Jobs, alignments, compile_training_graphs, stage_main

log_name = "speech.hmm.train_tri"


def grow_tree(exp: Path, jobs: Jobs, ali_model: Path, cfg, lexicon) -> HmmSystem:
    """Steps 1-3 up to the first model of EXP_DIR (single Gaussians, converted alignments)."""
    import logging

    from safetensors.torch import load_file

    from speech.hmm.gmm import DiagGmms
    from speech.hmm.tree import DecisionTree, TreeStats, phone_questions, question_ids

    log = logging.getLogger(log_name)
    old = load_system(ali_model)
    if list(old.cfg.phones) != list(cfg.phones) or list(old.cfg.states) != list(cfg.states):
        raise SpeechError(f"{ali_model}: its phones or states differ from {exp}'s lang dir; align with a model "
                          "trained on the same lang dir")
    if old.cfg.features != cfg.features or old.cfg.pipeline != cfg.pipeline:
        raise SpeechError(f"{ali_model}: trained on other features than the training data's; compute them alike")
    work = exp / "align"
    t0 = time.time()
    compile_training_graphs(work, jobs, ali_model)
    jobs.run(work, "align", "acc", lambda j: ["--graphs", str(work / f"graphs.{j}.ark"), "--ali",
                                              str(alignments(work, j)), "--align", "viterbi",
                                              "--out", str(work / f"acc.{j}.safetensors")], ali_model)
    jobs.run(work, "tree_stats", "tree-stats", lambda j: ["--ali", str(alignments(work, j)), "--out",
                                                          str(work / f"tree_stats.{j}.safetensors")], ali_model)
    stats = None
    for j in range(1, jobs.nj + 1):
        part = TreeStats.from_tensors(load_file(str(work / f"tree_stats.{j}.safetensors")))
        stats = part if stats is None else stats + part
    phones = list(cfg.phones)
    questions = question_ids(phone_questions(phones), phones)
    num_states = {i + 1: s for i, s in enumerate(cfg.states)}
    # Silence is context-independent, as Kaldi's roots.txt makes it (not-split): split by its
    # neighbours (101 of voices' 2000 leaves) it gave 56.2 % dev WER, unsplit 51.9 %
    tree = DecisionTree.build(stats, num_states, questions, cfg.train.num_leaves, cfg.train.min_leaf_count,
                              unsplit=frozenset({phones.index(SILENCE) + 1}))
    log.info("tree: %s (alignment with %s and tree building in %.1f s)", tree.describe(stats), ali_model,
             time.time() - t0)
    frames = stats.count.sum()
    mean = stats.sum.sum(dim=0) / frames
    var = stats.sumsq.sum(dim=0) / frames - mean**2
    gmms = DiagGmms.single(tree.num_pdfs, mean.float(), var.float())
    loop = old.loop_logprob[torch.tensor([old.tree.pdf(0, c, 0, s) for c, s in tree.owner()])]
    cfg.context_width = 3
    system = HmmSystem(cfg, tree, gmms, loop, lexicon)
    save_system(exp, system)
    jobs.run(exp, "convert", "convert", lambda j: ["--from-model", str(ali_model), "--ali",
                                                   str(alignments(work, j)), "--out", str(alignments(exp, j))])
    return system


def main(argv: list[str]) -> int:
    def validate(cfg) -> None:
        if cfg.train.num_leaves < 1:
            raise SpeechError("train.num_leaves must be set for triphones (e.g. conf/hmm/tri.yaml)")

    def initialize(args, cfg, lexicon, jobs) -> None:
        grow_tree(args.exp_dir, jobs, args.ali_model, cfg, lexicon)

    return stage_main("speech train-tri", __doc__, [
        ("data_dir", "training data dir with MFCCs and text"),
        ("lang_dir", "phone lang dir (speech prepare-lang --unit phone)"),
        ("ali_model", "the model dir that aligns the data (speech train-mono's)"),
        ("exp_dir", "output model dir")], argv, initialize, flat_start=False, validate=validate)
