"""Decode a data directory with a GMM-HMM: ``speech decode-hmm MODEL_DIR DATA_DIR DECODE_DIR``.

The graph is ``--graph GRAPH_DIR`` (``speech make-graph-hmm``: HCLG built once, checked to be
this model's), else HCLG (:mod:`speech.hmm.graph`) built here from the model's lexicon (or
``--lexicon``, a phone lexicon such as ``prepare-lang --unit phone`` writes) and ``--lm ARPA``
(the CTC system's LM), else a loop over the lexicon's words. Per-frame GMM log-likelihoods, scaled
by the acoustic scale, go to kaldi-decoder's FasterDecoder as one matrix per utterance (a
Python decodable would be ~50x slower). Writes DECODE_DIR/text (``<utt> words``, scored by
``speech score``) and a log with the real-time factor; every file is written atomically.
With ``--nj N`` (and ``--cmd``), N jobs decode DATA_DIR/splitN's parts, split by speaker for
the per-speaker CMVN, and their texts are merged (:mod:`speech.data.split_stage`).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from speech.data import split_stage
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import write_key_value
from speech.hmm.features import check_features, load_features
from speech.hmm.model import HmmSystem, load_system
from speech.logs import setup_logging
from speech.text.tokenizer import read_lexicon

log = logging.getLogger("speech.decode_hmm")


class HmmDecoder:
    """Utterance features [T, D] -> words, through one HCLG."""

    def __init__(self, system: HmmSystem, graph, words: dict[int, str], beam: float | None = None,
                 acoustic_scale: float | None = None, word_penalty: float | None = None):
        """graph: HCLG of ``system`` (:func:`speech.hmm.graph.hmm_graph`); words: its output
        symbols, id -> word."""
        from speech.graph.build import with_word_cost

        if acoustic_scale is not None:
            system.cfg.decode.acoustic_scale = acoustic_scale
        self.system = system
        self.beam = system.cfg.decode.beam if beam is None else beam
        self.graph, self.words = graph, words
        penalty = system.cfg.decode.word_penalty if word_penalty is None else word_penalty
        if penalty:
            self.graph = with_word_cost(self.graph, self.words, penalty)

    def __call__(self, feats) -> str:
        import kaldifst
        from kaldi_decoder import DecodableCtc, FasterDecoder, FasterDecoderOptions

        decoder = FasterDecoder(self.graph, FasterDecoderOptions(beam=self.beam,
                                                                 max_active=self.system.cfg.decode.max_active))
        decoder.decode(DecodableCtc(self.system.tid_scores(feats)))
        ok, path = decoder.get_best_path()
        if not ok:
            return ""
        ok, _, word_ids, _ = kaldifst.get_linear_symbol_sequence(path)
        return " ".join(self.words[w] for w in word_ids if w) if ok else ""


def decode_dir(model_dir: Path, data_dir: Path, out_dir: Path, lexicon: Path | None = None, lm: Path | None = None,
               beam: float | None = None, acoustic_scale: float | None = None,
               word_penalty: float | None = None, graph_dir: Path | None = None,
               device: str = "cpu") -> dict[str, str]:
    """Decode every utterance of DATA_DIR into OUT_DIR/text; returns the hypotheses."""
    from speech.hmm.graph import hmm_graph
    from speech.hmm.make_graph import read_graph_hmm

    if graph_dir is not None and (lm is not None or lexicon is not None):
        raise SpeechError("--graph already holds its lexicon and LM; give either --graph or --lexicon/--lm")
    if lm is not None and not lm.is_file():
        raise SpeechError(f"{lm}: no such language model; make one with speech train-lm")
    system = load_system(model_dir).to(resolve_device(device))
    check_features(data_dir, system.cfg.features, model_dir)
    t0 = time.time()
    if graph_dir is not None:
        graph, words = read_graph_hmm(graph_dir, system, model_dir)
    else:
        graph, words = hmm_graph(system, read_lexicon(lexicon, system.cfg.phones) if lexicon is not None else None, lm)
    decoder = HmmDecoder(system, graph, words, beam, acoustic_scale, word_penalty)
    log.info("HCLG: %d states in %.1f s (%s)", decoder.graph.num_states, time.time() - t0,
             f"read from {graph_dir}" if graph_dir is not None else "built")
    feats = load_features(data_dir, system.cfg.pipeline)
    t0 = time.time()
    hyps = {utt: decoder(x) for utt, x in feats.items()}
    write_key_value(out_dir / "text", hyps)
    frames = sum(len(x) for x in feats.values())
    seconds = frames * system.cfg.features.frame_shift_ms / 1000
    elapsed = time.time() - t0
    log.info("decoded %d utterances (%.1f s of audio) in %.1f s (RTF %.4f) -> %s", len(hyps), seconds, elapsed,
             elapsed / max(seconds, 1e-9), out_dir / "text")
    return hyps


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech decode-hmm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="GMM-HMM model dir (speech train-mono / train-tri)")
    p.add_argument("data_dir", type=Path, help="data directory with MFCCs (feats.scp)")
    p.add_argument("decode_dir", type=Path, help="output directory")
    p.add_argument("--graph", type=Path, help="graph dir of this model (speech make-graph-hmm) instead of building HCLG")
    p.add_argument("--lexicon", type=Path, help="phone lexicon (default: the model's lexicon.txt)")
    p.add_argument("--lm", type=Path, help="ARPA word LM (speech train-lm); without it a word loop")
    p.add_argument("--beam", type=float, help="search beam (default: the model's decode.beam)")
    p.add_argument("--acoustic-scale", type=float, help="scale of the log-likelihoods (default 0.1)")
    p.add_argument("--word-penalty", type=float,
                   help="cost per word in the graph, against insertions (default: the model's decode.word_penalty, 0)")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads for the likelihoods")
    p.add_argument("--device", default="cpu", help="where the GMM likelihoods are computed: cpu, cuda, cuda:N, auto")
    split_stage.add_options(p)
    args = p.parse_args(argv)
    if args.beam is not None and args.beam <= 0 or args.acoustic_scale is not None and args.acoustic_scale <= 0:
        raise SpeechError("--beam and --acoustic-scale must be positive")
    dirs = split_stage.work_dirs("decode-hmm", argv, args, args.data_dir, args.decode_dir,
                                 lambda jobs, out: split_stage.merge_lines(jobs, out, "text"), "decode",
                                 by_speaker=True)
    if dirs is None:
        return 0
    import torch

    torch.set_num_threads(max(1, args.num_threads))
    setup_logging(dirs[1] / "log" / "decode.log")
    decode_dir(args.model_dir, *dirs, args.lexicon, args.lm, args.beam, args.acoustic_scale,
               args.word_penalty, args.graph, args.device)
    return 0

