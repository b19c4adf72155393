"""GMM-HMM forced alignment: ``speech align-hmm MODEL_DIR DATA_DIR OUT_DIR``.

Every utterance of DATA_DIR (MFCCs and text) is aligned to its training graph (its words,
optional silence between them, every pronunciation; :mod:`speech.hmm.align`) and written as

- OUT_DIR/phones.ctm and OUT_DIR/words.ctm: Kaldi CTM (``<utt> 1 <start> <duration>
  <label> <confidence>``, seconds from the utterance's start; SIL is a phone of phones.ctm);
- OUT_DIR/textgrid/<utt>.TextGrid: Praat tiers ``words`` and ``phones``;
- OUT_DIR/phones and OUT_DIR/durations: the phone sequence of each utterance and each
  phone's length in feature frames (``frame_shift_ms`` of the model's feature config, in
  OUT_DIR/frame_shift): the durations a TTS acoustic model trains on;
- OUT_DIR/loglik: ``<utt> <log-likelihood per frame> <frames>`` of the best path, so that
  badly aligned utterances can be dropped (a low outlier is a wrong transcript or audio).

An utterance no path fits (too short for its transcript, or lost from the beam even at the
retry beam) is reported and left out. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import time
from pathlib import Path

from speech.alignment import TimeSpan, ctm_lines, textgrid
from speech.data.datadir import DataDir
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write, write_key_value
from speech.hmm.align import PhoneSpan, phone_spans, read_transcripts, viterbi
from speech.hmm.features import check_features, load_features
from speech.hmm.graph import hmm_graph
from speech.hmm.model import HmmSystem, load_system
from speech.hmm.topology import SILENCE
from speech.logs import setup_logging

log = logging.getLogger("speech.align_hmm")


def word_spans(phones: list[PhoneSpan], names: tuple[str, ...], words: list[str],
               lexicon: dict[str, list[list[str]]]) -> list[tuple[str, int, int]]:
    """(word, first frame, end frame) of each word: the aligned phones, silence left out,
    split into the words' pronunciations in order (the path took one of each).

    The split is searched, not taken greedily: with 'to' as T UW or T and a next word that
    starts with UW, the first pronunciation that fits can be the wrong one."""
    spoken = [p for p in phones if names[p.phone - 1] != SILENCE]
    labels = [names[p.phone - 1] for p in spoken]

    @functools.lru_cache(maxsize=None)
    def split(k: int, i: int) -> tuple[int, ...] | None:
        # pronunciation lengths of words[k:] that spell labels[i:] exactly, or None
        if k == len(words):
            return () if i == len(labels) else None
        for pron in lexicon[words[k]]:
            if labels[i:i + len(pron)] == pron:
                rest = split(k + 1, i + len(pron))
                if rest is not None:
                    return (len(pron), *rest)
        return None

    lengths = split(0, 0)
    if lengths is None:
        raise SpeechError(f"the aligned phones {' '.join(labels)} do not spell '{' '.join(words)}' in the lexicon")
    out, i = [], 0
    for word, n in zip(words, lengths):
        out.append((word, spoken[i].start, spoken[i + n - 1].end))
        i += n
    return out


def align_utterance(system: HmmSystem, graph, feats):
    """(transition ids [T], log-likelihood per frame) of one utterance through its training
    ``graph``, or None when it does not align."""
    train = system.cfg.train
    tids, score = viterbi(graph, system.tid_scores(feats), train.beam, train.retry_beam)
    if tids is None:
        return None
    return tids, score / system.cfg.decode.acoustic_scale / len(tids)


def align_speaker(system: HmmSystem, feats: dict, texts: dict[str, list[str]], tau: float) -> dict:
    """utterance -> align_utterance's result for one speaker's utterances. tau > 0: aligned
    again by the system with its means MAP-adapted (:meth:`DiagGmms.map_means`, ``tau``) to
    the speaker's frames as the first pass aligned them, as Kaldi's align_fmllr.sh (and the
    Montreal Forced Aligner) adapt to each speaker before the final alignment. Each training
    graph is built once: it depends on the tree and transitions, not on the means."""
    from speech.hmm.job import accumulate

    graphs = {u: hmm_graph(system, transcript=texts[u])[0] for u in feats}
    out = {u: align_utterance(system, graphs[u], x) for u, x in feats.items()}
    if tau > 0:
        stats, _, _, _ = accumulate(system, feats, {u: r[0] for u, r in out.items() if r is not None})
        speaker = dataclasses.replace(system, gmms=system.gmms.map_means(stats, tau))
        out = {u: align_utterance(speaker, graphs[u], x) for u, x in feats.items()}
    return out


def align_dir(model_dir: Path, data_dir: Path, out_dir: Path, device: str = "cpu", adapt_tau: float = 0.0) -> int:
    """Write OUT_DIR (see the module docstring); returns the number of utterances aligned.
    adapt_tau > 0: a second pass per speaker (:func:`align_speaker`)."""
    system = load_system(model_dir).to(resolve_device(device))
    check_features(data_dir, system.cfg.features, model_dir)
    texts = read_transcripts(data_dir)
    missing = sorted({w for ws in texts.values() for w in ws} - set(system.lexicon))
    if missing:
        raise SpeechError(f"{data_dir}/text: '{missing[0]}' (and {len(missing) - 1} more words) has no pronunciation "
                          f"in {model_dir}/lexicon.txt; add them to the lexicon and retrain, or leave them out")
    feats = load_features(data_dir, system.cfg.pipeline)
    t0 = time.time()
    by_speaker: dict[str, dict] = {}
    utt2spk = DataDir.read(data_dir).utt2spk
    for utt, x in feats.items():
        by_speaker.setdefault(utt2spk[utt], {})[utt] = x
    results = {}
    for speaker_feats in by_speaker.values():
        results.update(align_speaker(system, speaker_feats, texts, adapt_tau))
    shift = system.cfg.features.frame_shift_ms / 1000
    names = system.topology.phones
    phone_ctm, word_ctm, phone_seqs, durations, logliks = [], [], {}, {}, {}
    grids: dict[str, str] = {}
    failed = []
    owner = system.tree.owner()
    for utt, x in feats.items():
        if results[utt] is None:
            failed.append(utt)
            continue
        tids, loglik = results[utt]
        phones = phone_spans(tids, owner)
        p_spans = [TimeSpan(names[p.phone - 1], p.start * shift, p.end * shift) for p in phones]
        w_spans = [TimeSpan(w, a * shift, b * shift) for w, a, b in word_spans(phones, names, texts[utt],
                                                                              system.lexicon)]
        phone_ctm += ctm_lines(utt, p_spans)
        word_ctm += ctm_lines(utt, w_spans)
        phone_seqs[utt] = " ".join(s.label for s in p_spans)
        durations[utt] = " ".join(str(p.end - p.start) for p in phones)
        logliks[utt] = f"{loglik:.4f} {len(x)}"
        grids[utt] = textgrid({"words": w_spans, "phones": p_spans}, len(x) * shift)
    if failed:
        log.warning("%d utterances could not be aligned (e.g. %s); left out", len(failed), failed[0])
    if not logliks:
        raise SpeechError(f"{data_dir}: no utterance could be aligned; are the transcripts those of the audio?")
    for utt, grid in grids.items():
        with atomic_write(out_dir / "textgrid" / f"{utt}.TextGrid") as f:
            f.write(grid)
    for name, lines in (("phones.ctm", phone_ctm), ("words.ctm", word_ctm)):
        with atomic_write(out_dir / name) as f:
            f.write("".join(line + "\n" for line in lines))
    write_key_value(out_dir / "phones", phone_seqs)
    write_key_value(out_dir / "durations", durations)
    write_key_value(out_dir / "loglik", logliks)
    with atomic_write(out_dir / "frame_shift") as f:
        f.write(f"{shift}\n")
    log.info("aligned %d of %d utterances in %.1f s -> %s", len(logliks), len(feats), time.time() - t0, out_dir)
    return len(logliks)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech align-hmm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="GMM-HMM model dir (speech train-tri or train-mono)")
    p.add_argument("data_dir", type=Path, help="data directory with MFCCs (feats.scp) and text")
    p.add_argument("out_dir", type=Path, help="output directory")
    p.add_argument("--device", default="cpu", help="where the GMM likelihoods are computed: cpu, cuda, cuda:N, auto")
    p.add_argument("--adapt-tau", type=float, default=0.0,
                   help="> 0: align twice, the second time with the means MAP-adapted to each speaker (utt2spk) "
                        "with this prior weight in frames (Kaldi's gmm-adapt-map --mean-tau; 0: one pass)")
    args = p.parse_args(argv)
    if args.adapt_tau < 0:
        raise SpeechError(f"--adapt-tau {args.adapt_tau}: give 0 (no adaptation) or a positive prior weight, e.g. 20")
    setup_logging(args.out_dir / "log" / "align.log")
    align_dir(args.model_dir, args.data_dir, args.out_dir, args.device, args.adapt_tau)
    return 0
