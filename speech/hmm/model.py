"""A GMM-HMM system as a model dir of ``kind: hmm`` (the contract is :mod:`speech.model_dir`).

    config.yaml        kind: hmm, then the resolved HmmConfig (phones and their state counts,
                       context width, feature config and pipeline, sizes of the weights,
                       training and decoding settings)
    model.safetensors  the GMMs (log-weights [P, M], means and variances [P, M, D], padded
                       components at -inf weight) and each pdf's self-loop log-probability [P]
    tree.txt           the decision tree: (left, phone, right, state) -> pdf (:mod:`speech.hmm.tree`)
    lexicon.txt        the pronunciations it was trained with (words in phones)
    feature_config.yaml  the MFCC config of its features (``compute-mfcc --config`` takes it)

Nothing in it is a pickle: tensors in safetensors, the rest text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speech.config import save_config
from speech.data.datadir import FEATURE_CONFIG
from speech.errors import SpeechError
from speech.features import FeatureConfig
from speech.fileio import atomic_write
from speech.hmm.features import FeaturePipeline
from speech.hmm.gmm import DiagGmms
from speech.hmm.topology import HmmTopology, tid_pdfs
from speech.hmm.tree import DecisionTree
from speech.model_dir import WEIGHTS, load_model, save_model_config, save_weights
from speech.text.prepare_lang import write_lexicon
from speech.text.tokenizer import LEXICON

KIND = "hmm"
TREE = "tree.txt"


@dataclass
class TrainConfig:
    """Kaldi's train_mono.sh / train_deltas.sh options, with their defaults for monophones."""

    num_iters: int = 40
    realign_iters: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20,
                                                               23, 26, 29, 32, 35, 38])
    total_gaussians: int = 1000  # the target reached by mixing up over the first max_iter_inc iterations
    max_iter_inc: int = 30
    num_leaves: int = 0  # triphones: the tree's number of leaves (pdfs); 0 for monophones
    min_leaf_count: float = 100.0  # frames a leaf must have to be split off
    power: float = 0.2  # Gaussians per pdf grow as occupancy ** power (Kaldi's --power)
    min_variance: float = 1.0e-3
    initial_self_loop: float = 0.75  # Kaldi's proto topology
    beam: float = 10.0  # alignment beam, retried at retry_beam when no path survives
    retry_beam: float = 40.0
    seed: int = 0

    def validate(self) -> None:
        if self.num_iters < 1:
            raise SpeechError(f"train.num_iters must be at least 1 (got {self.num_iters})")
        if self.total_gaussians < 1 or self.max_iter_inc < 1:
            raise SpeechError("train.total_gaussians and train.max_iter_inc must be at least 1")
        if self.num_leaves < 0 or self.beam <= 0 or self.retry_beam < self.beam:
            raise SpeechError("train.num_leaves must be >= 0, train.beam > 0 and train.retry_beam >= train.beam")


@dataclass
class DecodeConfig:
    acoustic_scale: float = 0.1  # Kaldi's --acoustic-scale: log-likelihoods are scaled by it
    self_loop_scale: float = 0.1  # Kaldi's --self-loop-scale (graph building)
    beam: float = 13.0
    max_active: int = 7000
    word_penalty: float = 0.0  # a cost per word in the graph (Kaldi's word insertion penalty), tuned on dev


@dataclass
class HmmConfig:
    phones: list[str] = field(default_factory=list)  # id = index + 1; SIL first
    states: list[int] = field(default_factory=list)
    context_width: int = 1  # 1: monophones, 3: triphones
    num_pdfs: int = 0  # sizes of the weights, set by training
    num_components: int = 0
    dim: int = 0  # model input dimension (after deltas)
    features: FeatureConfig = field(default_factory=FeatureConfig)  # from the training data dir
    pipeline: FeaturePipeline = field(default_factory=FeaturePipeline)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


class HmmWeights(torch.nn.Module):
    """The tensors of model.safetensors, as buffers of the sizes config.yaml gives."""

    def __init__(self, cfg: HmmConfig):
        super().__init__()
        p, m, d = cfg.num_pdfs, cfg.num_components, cfg.dim
        self.register_buffer("log_weights", torch.zeros(p, m))
        self.register_buffer("means", torch.zeros(p, m, d))
        self.register_buffer("variances", torch.ones(p, m, d))
        self.register_buffer("loop_logprob", torch.zeros(p))


def build_model(cfg: HmmConfig) -> HmmWeights:
    return HmmWeights(cfg)


@dataclass
class HmmSystem:
    """Everything an HMM model dir holds, in memory."""

    cfg: HmmConfig
    tree: DecisionTree
    gmms: DiagGmms
    loop_logprob: torch.Tensor  # [P]
    lexicon: dict[str, list[list[str]]]

    @property
    def topology(self) -> HmmTopology:
        return HmmTopology(tuple(self.cfg.phones), tuple(self.cfg.states))

    def to(self, device: torch.device | str) -> HmmSystem:
        """This system with its GMMs on ``device``: the likelihoods and statistics, the
        frame-level work, are computed there (the rest is small and stays on the CPU)."""
        self.gmms = self.gmms.to(device)
        return self

    def tid_scores(self, feats: torch.Tensor) -> np.ndarray:
        """[T, D] -> float32 [T, 2P]: acoustic_scale * log p(x_t | pdf of tid) for every
        transition id, the matrix kaldi-decoder's DecodableCtc reads (column = tid)."""
        return next(self.iter_tid_scores([feats]))

    def iter_tid_scores(self, feats: Iterable[torch.Tensor], max_frames: int = 20000) -> Iterator[np.ndarray]:
        """:meth:`tid_scores` of each utterance in turn, computed for batches of utterances of
        up to ``max_frames`` frames: large matrix products instead of one small one per
        utterance (3x faster on digits), while the [T, 2P] matrices of a whole job's utterances
        never exist at once (8 GB for half of 3 hours with 2000 pdfs)."""
        batch: list[torch.Tensor] = []
        for x in feats:
            if batch and sum(map(len, batch)) + len(x) > max_frames:
                yield from self._tid_score_batch(batch)
                batch = []
            batch.append(x)
        if batch:
            yield from self._tid_score_batch(batch)

    def _tid_score_batch(self, feats: list[torch.Tensor]) -> list[np.ndarray]:
        ll = (self.gmms.log_likelihoods(torch.cat(feats)) * self.cfg.decode.acoustic_scale).cpu()  # [T, P]
        scores = ll[:, tid_pdfs(ll.shape[1])].numpy()
        ends = np.cumsum([len(x) for x in feats])[:-1]
        return [np.ascontiguousarray(m, dtype=np.float32) for m in np.split(scores, ends)]


def save_system(model_dir: str | Path, system: HmmSystem) -> None:
    """Write the model dir; config.yaml last, so that a dir with a config is whole."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    cfg = system.cfg
    cfg.num_pdfs, cfg.num_components, cfg.dim = (system.gmms.num_pdfs, system.gmms.num_components,
                                                 system.gmms.dim)
    weights = HmmWeights(cfg)
    weights.log_weights.copy_(system.gmms.log_weights)
    weights.means.copy_(system.gmms.means)
    weights.variances.copy_(system.gmms.variances)
    weights.loop_logprob.copy_(system.loop_logprob)
    save_weights(weights, model_dir / WEIGHTS)
    with atomic_write(model_dir / TREE) as f:
        f.write(system.tree.to_text())
    write_lexicon(model_dir / LEXICON, [(w, p) for w in sorted(system.lexicon) for p in system.lexicon[w]])
    save_config(cfg.features, model_dir / FEATURE_CONFIG)  # what compute-mfcc --config takes
    save_model_config(model_dir, KIND, cfg)


def load_system(model_dir: str | Path) -> HmmSystem:
    """An HMM model dir; one-line errors for another kind, damaged weights or tree."""
    from speech.text.tokenizer import read_lexicon

    model_dir = Path(model_dir)
    cfg, weights = load_model(model_dir, KIND)
    if not (model_dir / TREE).is_file():
        raise SpeechError(f"{model_dir / TREE}: missing; the model dir is incomplete (train it again)")
    tree = DecisionTree.from_text((model_dir / TREE).read_text(encoding="utf-8"), str(model_dir / TREE))
    if tree.num_pdfs != cfg.num_pdfs:
        raise SpeechError(f"{model_dir / TREE}: {tree.num_pdfs} pdfs, but {model_dir}/config.yaml has "
                          f"{cfg.num_pdfs}; copy the tree it was trained with")
    gmms = DiagGmms(weights.log_weights, weights.means, weights.variances)
    lexicon = read_lexicon(model_dir / LEXICON, cfg.phones)
    return HmmSystem(cfg, tree, gmms, weights.loop_logprob.clone(), lexicon)
