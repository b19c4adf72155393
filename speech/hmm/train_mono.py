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

import time
from pathlib import Path

import torch

from speech.hmm.features import load_features
from speech.hmm.gmm import DiagGmms
from speech.hmm.model import HmmConfig, HmmSystem, save_system
from speech.hmm.topology import HmmTopology
from speech.hmm.train import PROGRESS, finish, prepare, run_em, stage_parser
from speech.hmm.tree import DecisionTree
from speech.logs import setup_logging


def initial_system(cfg: HmmConfig, lexicon: dict, data_dir: Path) -> HmmSystem:
    """One Gaussian per pdf at the global mean and variance of (a split of) the data."""
    feats = torch.cat(list(load_features(data_dir, cfg.pipeline).values()))
    tree = DecisionTree.monophone(HmmTopology(tuple(cfg.phones), tuple(cfg.states)).num_states())
    gmms = DiagGmms.single(tree.num_pdfs, feats.mean(dim=0), feats.var(dim=0))
    loop = torch.full((tree.num_pdfs,), float(torch.tensor(cfg.train.initial_self_loop).log()))
    return HmmSystem(cfg, tree, gmms, loop, lexicon)


def main(argv: list[str]) -> int:
    prog = "speech train-mono"
    p = stage_parser(prog, __doc__, [("data_dir", "training data dir with MFCCs and text"),
                                     ("lang_dir", "phone lang dir (speech prepare-lang --unit phone)"),
                                     ("exp_dir", "output model dir")])
    args = p.parse_intermixed_args(argv)
    ready = prepare(args.data_dir, args.lang_dir, args.exp_dir, args, prog)
    if ready is None:
        return 0
    cfg, lexicon, jobs = ready
    cfg.context_width = 1
    exp = args.exp_dir
    setup_logging(exp / "log" / "train.log")
    start = time.time()
    if not (exp / PROGRESS).is_file():
        save_system(exp, initial_system(cfg, lexicon, jobs.splits[0]))
    system = run_em(exp, jobs, cfg.train, flat_start=True)
    finish(exp, system, start)
    print(f"{prog}: {exp}: {system.gmms.num_pdfs} pdfs, {system.gmms.num_gaussians()} Gaussians in "
          f"{time.time() - start:.0f} s")
    return 0
