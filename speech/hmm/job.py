"""One job of GMM-HMM training on one split of the data (``python -m speech.hmm.job OP ...``),
run N at a time by the job runner (local or Slurm), as Kaldi's steps/ run gmm-acc-stats-ali
per split.

Operations (each reads the model dir ``--model`` and the split ``--data``; outputs are
written atomically, so a killed job leaves nothing half-written):

- ``compile``: the training graph of every utterance (H o C o L o transcript), to
  ``--graphs`` (a Kaldi FST archive), compiled once per system as compile-train-graphs does;
- ``acc``: align (``--align equal|viterbi``, or keep ``--ali`` as it is), then accumulate GMM
  statistics and transition counts to ``--out`` (safetensors), the alignments to ``--ali``;
- ``tree-stats``: single-Gaussian statistics per (left, phone, right, state) context of the
  alignments ``--ali`` of ``--model`` (acc-tree-stats), to ``--out``;
- ``convert``: rewrite the alignments ``--ali`` of ``--from-model`` in ``--model``'s pdfs
  (convert-ali: the same phones, states and stays, the new tree's pdfs), to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_path, atomic_write
from speech.hmm.align import read_transcripts
from speech.hmm.model import HmmSystem, load_system

log = logging.getLogger("speech.hmm.job")


def compile_graphs(system: HmmSystem, transcripts: dict[str, list[str]], out: Path, source: Path) -> None:
    import kaldifst

    from speech.hmm.graph import hmm_graph

    with atomic_path(out) as tmp:
        writer = kaldifst.VectorFstWriter(f"ark:{tmp}")
        for utt, words in transcripts.items():
            try:
                graph, _ = hmm_graph(system, transcript=words)
            except SpeechError as e:
                raise SpeechError(f"{source}: '{utt}': {e}") from None
            writer.write(utt, graph)
        writer.close()


def read_graphs(path: Path) -> dict:
    import kaldifst

    reader = kaldifst.SequentialVectorFstReader(f"ark:{path}")
    graphs = {}
    while not reader.done:
        graphs[reader.key] = kaldifst.StdVectorFst(reader.value)  # the reader reuses its FST
        reader.next()
    return graphs


def write_alignments(path: Path, alis: dict[str, np.ndarray]) -> None:
    """Kaldi's text alignment: ``<utt> <tid> <tid> ...`` per utterance."""
    with atomic_write(path) as f:
        for utt, tids in alis.items():
            f.write(f"{utt} {' '.join(map(str, tids.tolist()))}\n")


def read_alignments(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        utt, *tids = line.split()
        try:
            out[utt] = np.asarray([int(t) for t in tids], dtype=np.int64)
        except ValueError:
            raise SpeechError(f"{path}:{lineno}: not an alignment line ('<utt> <tid> ...'); train again") from None
    return out


def accumulate(system: HmmSystem, feats: dict[str, torch.Tensor], alis: dict[str, np.ndarray]):
    """(GmmStats, transition counts [P, 2], total log-likelihood, frames) over the aligned
    utterances."""
    from speech.hmm.align import transition_counts
    from speech.hmm.gmm import GmmStats

    g = system.gmms
    stats = GmmStats.zeros(g.num_pdfs, g.num_components, g.dim, g.means.device)
    utts = [u for u in alis if u in feats]
    if not utts:
        return stats, torch.zeros(g.num_pdfs, 2, dtype=torch.float64), 0.0, 0
    x = torch.cat([feats[u] for u in utts])
    tids = np.concatenate([alis[u] for u in utts])
    loglik = g.accumulate(x, torch.from_numpy(tids // 2), stats)
    return stats, transition_counts(tids, g.num_pdfs), loglik, len(tids)


def _acc(args, system: HmmSystem, feats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    from speech.hmm.align import equal_alignment, viterbi

    failed = 0
    if args.align == "keep":
        alis = read_alignments(args.ali)
    else:
        graphs = read_graphs(args.graphs)
        alis = {}
        scores = system.iter_tid_scores(feats.values()) if args.align == "viterbi" else None
        for k, (utt, x) in enumerate(feats.items()):
            if scores is None:
                tids = equal_alignment(graphs[utt], len(x), args.seed + k)
            else:
                tids, _ = viterbi(graphs[utt], next(scores), system.cfg.train.beam, system.cfg.train.retry_beam)
            if tids is None:
                failed += 1
                log.warning("%s: no alignment (%d frames)", utt, len(x))
            else:
                alis[utt] = tids
        write_alignments(args.ali, alis)
    stats, trans, loglik, frames = accumulate(system, feats, alis)
    with atomic_path(args.out) as tmp:
        save_file({**{k: v.cpu() for k, v in stats.tensors().items()}, "transitions": trans,
                   "summary": torch.tensor([loglik, frames, failed, len(feats)], dtype=torch.float64)}, str(tmp))
    log.info("%d utterances, %d frames, log-likelihood per frame %.4f, %d not aligned", len(alis), frames,
             loglik / max(frames, 1), failed)


def frame_contexts(tids: np.ndarray, owner: list[tuple[int, int]]) -> np.ndarray:
    """[T, 4] int64 (left, phone, right, state) of every frame of one alignment; 0 is the
    utterance's edge."""
    from speech.hmm.align import phone_spans

    spans = phone_spans(tids, owner)
    phones = np.asarray([0] + [s.phone for s in spans] + [0])
    lengths = np.asarray([s.end - s.start for s in spans])
    which = np.repeat(np.arange(len(spans)), lengths) + 1  # frame -> index into phones
    if len(which) != len(tids):  # frames before the first phone start: a malformed alignment
        raise SpeechError("an alignment does not start with a phone's first state")
    state = np.asarray([s for _, s in owner])[tids // 2]
    return np.stack([phones[which - 1], phones[which], phones[which + 1], state], axis=1)


def _tree_stats(args, system: HmmSystem, feats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    from speech.hmm.tree import TreeStats

    alis = read_alignments(args.ali)
    owner = system.tree.owner()
    utts = [u for u in alis if u in feats]
    contexts = np.concatenate([frame_contexts(alis[u], owner) for u in utts])
    stats = TreeStats.accumulate(torch.from_numpy(contexts), torch.cat([feats[u] for u in utts]))
    with atomic_path(args.out) as tmp:
        save_file(stats.tensors(), str(tmp))


def convert(alis: dict[str, np.ndarray], old: HmmSystem, new: HmmSystem) -> dict[str, np.ndarray]:
    """Alignments of ``old`` in ``new``'s transition ids (both share phones and states)."""
    owner = old.tree.owner()
    out = {}
    for utt, tids in alis.items():
        c = torch.from_numpy(frame_contexts(tids, owner))
        out[utt] = new.tree.pdfs(c).numpy() * 2 + tids % 2
    return out


def main(argv: list[str]) -> int:
    from speech.hmm.features import load_features

    p = argparse.ArgumentParser(prog="python -m speech.hmm.job")
    p.add_argument("op", choices=["compile", "acc", "tree-stats", "convert"])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--graphs", type=Path)
    p.add_argument("--ali", type=Path)
    p.add_argument("--align", choices=["equal", "viterbi", "keep"], default="keep")
    p.add_argument("--from-model", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="where the GMM likelihoods and statistics are computed")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # N jobs share the machine's cores
    start = time.time()
    try:
        system = load_system(args.model).to(resolve_device(args.device))
        if args.op == "compile":
            compile_graphs(system, read_transcripts(args.data), args.graphs, args.data / "text")
        elif args.op == "convert":
            write_alignments(args.out, convert(read_alignments(args.ali), load_system(args.from_model), system))
        else:
            feats = load_features(args.data, system.cfg.pipeline, system.cfg.features.num_ceps
                                  if system.cfg.features.type == "mfcc" else None)
            (_acc if args.op == "acc" else _tree_stats)(args, system, feats)
    except SpeechError as e:
        print(f"python -m speech.hmm.job {args.op}: {e}", file=sys.stderr)
        return 1
    log.info("%s done in %.1f s", args.op, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
