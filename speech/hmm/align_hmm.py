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
  badly aligned utterances can be dropped (a low outlier is a wrong transcript or audio);
- OUT_DIR/lexicon_added.txt: the pronunciations given to words the model's lexicon lacks
  (:func:`pronounce_new_words`), when there were any;
- OUT_DIR/boundary_offsets.yaml: with ``--boundary-offsets``, the offsets every boundary was
  moved by (:mod:`speech.boundary_offsets`); the CTMs' and TextGrids' times are then to the
  millisecond, and the durations those times on the nearest frames.

An utterance no path fits (too short for its transcript, or lost from the beam even at the
retry beam) is reported and left out. Every file is written atomically. With ``--nj N`` (and
``--cmd``), N jobs align DATA_DIR/splitN's parts, split by speaker (CMVN and adaptation are
per speaker), and their outputs are merged (:mod:`speech.data.split_stage`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import time
from pathlib import Path

from speech.alignment import TimeSpan, ctm_lines, textgrid
from speech.boundary_offsets import BoundaryOffsets
from speech.data import split_stage
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
from speech.text.prepare_lang import write_lexicon

log = logging.getLogger("speech.align_hmm")

ADDED_LEXICON = "lexicon_added.txt"
OFFSETS = "boundary_offsets.yaml"


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


def pronounce_new_words(system: HmmSystem, texts: dict[str, list[str]], data_dir: Path,
                        model_dir: Path) -> dict[str, list[list[str]]]:
    """Pronunciations of the transcripts' words that the model's lexicon lacks, from CMUdict
    or festival's letter-to-sound rules (what prepare-lang --unit phone gave the training
    words), as the Montreal Forced Aligner spells new words with its G2P model: a TTS corpus
    has names and rare words that no training text had. A pronunciation with a phone the
    model lacks (a model of other phones) is a one-line error."""
    from speech.text.g2p import pronunciations

    missing = sorted({w for ws in texts.values() for w in ws} - set(system.lexicon))
    if not missing:
        return {}
    prons, guessed = pronunciations(missing)
    known = set(system.cfg.phones)
    for word in missing:
        for pron in prons[word]:
            if not set(pron) <= known:
                raise SpeechError(f"{data_dir}/text: '{word}' is not in {model_dir}/lexicon.txt and its "
                                  f"pronunciation '{' '.join(pron)}' has phones the model lacks "
                                  f"({' '.join(sorted(set(pron) - known))}); add the word to the lexicon and "
                                  "retrain, or leave it out")
    log.warning("%d words are not in %s/lexicon.txt (e.g. %s); CMUdict pronounced %d, festival's letter-to-sound "
                "rules %d", len(missing), model_dir, " ".join(missing[:3]), len(missing) - len(guessed), len(guessed))
    return prons


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


def frame_edges(starts: list[float], num_frames: int, shift: float) -> list[int]:
    """Phone edges in frames [N + 1] (0 ... num_frames) of phones starting at ``starts``
    (seconds, the first 0): the nearest frame, every phone kept at least one frame long."""
    edges = [0] + [round(t / shift) for t in starts[1:]] + [num_frames]
    for k in range(1, len(edges) - 1):
        edges[k] = max(edges[k], edges[k - 1] + 1)
    for k in range(len(edges) - 2, 0, -1):
        edges[k] = min(edges[k], edges[k + 1] - 1)
    return edges


def align_dir(model_dir: Path, data_dir: Path, out_dir: Path, device: str = "cpu", adapt_tau: float = 0.0,
              offsets: BoundaryOffsets | None = None, allow_none: bool = False) -> int:
    """Write OUT_DIR (see the module docstring); returns the number of utterances aligned.
    adapt_tau > 0: a second pass per speaker (:func:`align_speaker`); offsets: each phone
    boundary moved by minus its offset (:meth:`BoundaryOffsets.correct`); allow_none: no
    aligned utterance is not an error (one job's part of the data)."""
    system = load_system(model_dir).to(resolve_device(device))
    check_features(data_dir, system.cfg.features, model_dir)
    texts = read_transcripts(data_dir)
    added = pronounce_new_words(system, texts, data_dir, model_dir)
    if added:
        system = dataclasses.replace(system, lexicon={**system.lexicon, **added})
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
    # corrected boundaries lie between frames: milliseconds keep them
    decimals = 2 if offsets is None else 3
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
        edges = [p.start for p in phones] + [len(tids)]  # in frames
        if offsets is not None:
            p_spans = offsets.correct(p_spans, shift)
            edges = frame_edges([s.start for s in p_spans], len(tids), shift)
        time_of = {p.start: s.start for p, s in zip(phones, p_spans)} | {len(tids): p_spans[-1].end}
        w_spans = [TimeSpan(w, time_of[a], time_of[b]) for w, a, b in word_spans(phones, names, texts[utt],
                                                                                system.lexicon)]
        phone_ctm += ctm_lines(utt, p_spans, decimals)
        word_ctm += ctm_lines(utt, w_spans, decimals)
        phone_seqs[utt] = " ".join(s.label for s in p_spans)
        durations[utt] = " ".join(str(b - a) for a, b in zip(edges, edges[1:]))
        logliks[utt] = f"{loglik:.4f} {len(x)}"
        grids[utt] = textgrid({"words": w_spans, "phones": p_spans}, len(x) * shift)
    if failed:
        log.warning("%d utterances could not be aligned (e.g. %s); left out", len(failed), failed[0])
    if not logliks and not allow_none:
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
    if offsets is not None:
        offsets.save(out_dir / OFFSETS)
    if added:
        write_lexicon(out_dir / ADDED_LEXICON, [(w, p) for w in sorted(added) for p in added[w]])
        log.info("the pronunciations of the %d new words: %s", len(added), out_dir / ADDED_LEXICON)
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
    p.add_argument("--boundary-offsets", type=Path, metavar="YAML",
                   help="move each phone boundary by minus its kind's offset (speech fit-boundary-offsets)")
    split_stage.add_options(p)
    args = p.parse_args(argv)
    if args.adapt_tau < 0:
        raise SpeechError(f"--adapt-tau {args.adapt_tau}: give 0 (no adaptation) or a positive prior weight, e.g. 20")
    offsets = None if args.boundary_offsets is None else BoundaryOffsets.load(args.boundary_offsets)
    dirs = split_stage.work_dirs("align-hmm", argv, args, args.data_dir, args.out_dir, merge, "align",
                                 by_speaker=True)
    if dirs is None:
        if not (args.out_dir / "loglik").read_text(encoding="utf-8").strip():
            raise SpeechError(f"{args.data_dir}: no utterance could be aligned (see {args.out_dir}/log/align.*.log); "
                              "are the transcripts those of the audio?")
        return 0
    setup_logging(dirs[1] / "log" / "align.log")
    align_dir(args.model_dir, *dirs, args.device, args.adapt_tau, offsets, allow_none=args.job is not None)
    return 0


def merge(job_dirs: list[Path], out_dir: Path) -> None:
    for name in ("phones.ctm", "words.ctm", "phones", "durations", "loglik"):
        split_stage.merge_lines(job_dirs, out_dir, name)
    split_stage.merge_lines(job_dirs, out_dir, ADDED_LEXICON, unique=True)
    split_stage.merge_files(job_dirs, out_dir, "textgrid")
    for name in ("frame_shift", OFFSETS):
        split_stage.copy_first(job_dirs, out_dir, name)
