"""``speech train-mono DATA_DIR LANG_DIR EXP_DIR``: a monophone GMM-HMM from a flat start, as
Kaldi's steps/train_mono.sh.

DATA_DIR has MFCCs (speech compute-mfcc) and transcripts; LANG_DIR is a phone lang dir
(``speech prepare-lang --unit phone``: CMUdict pronunciations, festival's letter-to-sound
rules for the rest). Phones are CMUdict's 39 plus SIL, 3 states each (SIL 5), one pdf per
state; every pdf starts as one Gaussian at the global mean and variance (gmm-init-mono),
the first alignment is equal (align-equal-compiled), then :mod:`speech.hmm.train`'s EM loop.
Writes EXP_DIR as a model dir of kind hmm (:mod:`speech.hmm.model`); a killed run resumes
at its next iteration; a finished one is skipped (``--force`` retrains).
"""

from __future__ import annotations

from pathlib import Path

import torch

from speech.hmm.features import load_features
from speech.hmm.gmm import DiagGmms
from speech.hmm.model import HmmConfig, HmmSystem, save_system
from speech.hmm.topology import HmmTopology
from speech.hmm.train import stage_main
from speech.hmm.tree import DecisionTree


def initial_system(cfg: HmmConfig, lexicon: dict, data_dir: Path) -> HmmSystem:
    """One Gaussian per pdf at the global mean and variance of (a split of) the data."""
    feats = torch.cat(list(load_features(data_dir, cfg.pipeline).values()))
    tree = DecisionTree.monophone(HmmTopology(tuple(cfg.phones), tuple(cfg.states)).num_states())
    gmms = DiagGmms.single(tree.num_pdfs, feats.mean(dim=0), feats.var(dim=0))
    loop = torch.full((tree.num_pdfs,), float(torch.tensor(cfg.train.initial_self_loop).log()))
    return HmmSystem(cfg, tree, gmms, loop, lexicon)


def main(argv: list[str]) -> int:
    def initialize(args, cfg: HmmConfig, lexicon: dict, jobs) -> None:
        cfg.context_width = 1
        save_system(args.exp_dir, initial_system(cfg, lexicon, jobs.splits[0]))

    return stage_main("speech train-mono", __doc__, [("data_dir", "training data dir with MFCCs and text"),
                                                    ("lang_dir", "phone lang dir (speech prepare-lang --unit phone)"),
                                                    ("exp_dir", "output model dir")], argv, initialize, flat_start=True)
