"""Judge synthesized speech against the recordings: ``speech evaluate-tts``.

    speech evaluate-tts --ref data/test [--judge-model exp/blstm_ctc] [--no-pocketsphinx] \\
        --out-dir exp/eval_vocoders griffin_lim=exp/voc_gl/test gru=exp/voc_gru/test

The reference is the recordings' data dir (wav.scp, text, utt2spk; segments allowed, any
sample rate). Each system NAME=DIR is a data dir of synthesized audio of the same utterances
(``speech vocode`` writes one): DIR/utt2spk must hold every utterance of the reference, its
text (if any) must read as the reference's, and its audio must be at 16 kHz, the rate the
synthesis half generates and the judges hear (another rate means it was made with another
mel config, so it is refused rather than resampled). Utterances the reference lacks are
left out. For the recordings themselves (a row named ``--ref-name``, default
``recordings``) and every system this computes

- MCD: the mean over utterances of the DTW-aligned mel-cepstral distortion against the
  recording, in dB (:mod:`speech.tts.mcd`; not applicable to the recordings);
- WER by each judge (:mod:`speech.tts.judges`): PocketSphinx (unless ``--no-pocketsphinx``)
  and each ``--judge-model [NAME=]MODEL_DIR`` (this project's ASR, decoded as its
  decoding.yaml says), scored against the reference's text by ``speech score``'s code.

Output, under OUT_DIR:

    <system>/mcd                 <utt> <MCD dB>, per utterance (not for the recordings)
    <system>/<judge>/text        <utt> <words the judge heard>
    <system>/<judge>/wer         %WER and %SER lines; scoring/per_utt, scoring/per_spk beside
    <system>/source.json         what the tables were computed from
    spectrograms.png             log-mels of one utterance (--plot-utt, default the first) by each
    results.md                   one row per system: MCD dB, WER per judge
    results.json                 the same numbers, and the setup; written last (the done marker)

The per-utterance tables are rewritten (atomically) after every utterance, so a killed run
resumes where it stopped; a finished one is skipped unless ``--force``, and tables older
than their audio or the judge's model, or computed from another data dir or judge, are
computed again.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from speech.asr.score import ErrorStats, score_dir
from speech.audio import audio_info, resample
from speech.data.datadir import DataDir, few_ids, iter_utterance_audio
from speech.errors import DataDirError, SpeechError
from speech.fileio import atomic_write, read_key_value, write_key_value
from speech.logs import setup_logging
from speech.stage import newer_than, read_done, skip, write_done
from speech.tts.judges import AsrJudge, Judge, PocketSphinxJudge
from speech.tts.mcd import McdConfig, mcd_of_cepstra, mel_cepstrum
from speech.tts.mel import MelConfig
from speech.tts.spectrogram import plot_spectrograms

log = logging.getLogger("speech.evaluate_tts")

RESULTS_MD, RESULTS_JSON, SPECTROGRAMS = "results.md", "results.json", "spectrograms.png"
MCD_TABLE, HYP_TABLE, SOURCE = "mcd", "text", "source.json"
# names become directory names; "log" holds the stage's log, "mcd" is a system's MCD table
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
RESERVED_SYSTEM_NAMES, RESERVED_JUDGE_NAMES = {"log"}, {MCD_TABLE, SOURCE}


@dataclass
class System:
    """One row of the results: the recordings (``reference``: no MCD) or a system's audio."""

    name: str
    data: DataDir
    reference: bool = False


@dataclass
class SystemResult:
    name: str
    data_dir: Path
    mcd_db: float | None  # mean over utterances; None for the recordings
    wer: dict[str, ErrorStats] = field(default_factory=dict)  # judge name -> its scores
    wer_files: dict[str, Path] = field(default_factory=dict)


class _Table:
    """A per-utterance result table (``<utt> <value>``) being filled: every added row
    rewrites the file atomically, so a kill loses at most the utterance being computed."""

    def __init__(self, path: Path, values: dict[str, str]):
        self.path, self.values = path, values

    def add(self, utt: str, value: str) -> None:
        self.values[utt] = value
        write_key_value(self.path, self.values)


def _open_table(path: Path, utts: Sequence[str], inputs: Iterable[Path], reusable: bool,
                valid: Callable[[str], bool] = lambda value: True) -> _Table:
    """The rows of ``path`` that an earlier run computed for ``utts``, when ``reusable`` (same
    sources) and the file is newer than every input; else an empty table, and the old file
    is removed, so that a kill before the first new row cannot leave stale rows that look
    current."""
    if reusable and newer_than([path], inputs):
        try:
            old = read_key_value(path, allow_empty_value=True)
        except SpeechError:  # a damaged leftover: compute it again
            old = {}
        wanted = set(utts)
        return _Table(path, {u: v for u, v in old.items() if u in wanted and valid(v)})
    path.unlink(missing_ok=True)
    return _Table(path, {})


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def audio_inputs(d: DataDir) -> list[Path]:
    """The files of a data dir that say which audio its utterances are."""
    return [d.path / name for name in ("wav.scp", "segments", "utt2spk")]


def check_system(system: DataDir, ref: DataDir, name: str) -> None:
    """SpeechError unless ``system`` holds every utterance of ``ref`` with the same text."""
    missing = [u for u in ref.utterances() if u not in system.utt2spk]
    if missing:
        raise DataDirError(f"{system.path / 'utt2spk'}: system '{name}' lacks {len(missing)} utterance(s) of the "
                           f"reference {ref.path} ({few_ids(missing)}); synthesize them, or evaluate against a "
                           f"subset of the reference (speech subset-data-dir)")
    if system.text is None or ref.text is None:
        return
    ref_lines = {u: i for i, u in enumerate(ref.text, 1)}  # table files have no blank lines
    for lineno, (utt, words) in enumerate(system.text.items(), 1):
        if utt in ref.text and words != ref.text[utt]:
            raise DataDirError(f"{system.path / 'text'}:{lineno}: '{utt}' reads '{words}' but "
                               f"{ref.path / 'text'}:{ref_lines[utt]} reads '{ref.text[utt]}'; the system was "
                               f"made from another data dir: synthesize it from {ref.path}")


def check_rates(system: DataDir, utts: Sequence[str], sample_rate: int, name: str) -> None:
    """AudioError for an unreadable recording, SpeechError for one not at ``sample_rate``,
    among those ``utts`` use: found before any work, and named."""
    recordings = dict.fromkeys(system.segment(u).recording for u in utts)
    for rec in recordings:
        value = system.wav_scp.get(rec)
        if value is None:
            raise DataDirError(f"{system.path / 'wav.scp'}: no recording '{rec}'; add it or run: "
                               f"speech fix-data-dir {system.path}")
        _, rate = audio_info(value)
        if rate != sample_rate:
            raise SpeechError(f"{value}: {rate} Hz, but system '{name}' ({system.path / 'wav.scp'}) must be "
                              f"{sample_rate} Hz audio, the rate the judges hear and MCD is computed at; "
                              f"synthesize it at {sample_rate} Hz (the mel config's sample_rate)")


class _Timer:
    """Seconds spent per utterance by one metric, for the log."""

    def __init__(self):
        self.seconds, self.count, self.audio_seconds = 0.0, 0, 0.0

    def line(self, what: str) -> str:
        each = self.seconds / max(self.count, 1)
        return (f"{what}: {self.count} utterances in {self.seconds:.1f} s ({each:.2f} s each, "
                f"{self.seconds / max(self.audio_seconds, 1e-9):.2f} x real time)")


def evaluate_system(system: System, ref: DataDir, out_dir: Path, judges: Sequence[Judge], cfg: McdConfig,
                    ref_cepstra: dict[str, np.ndarray], force: bool = False) -> SystemResult:
    """Fill (or resume) OUT_DIR/NAME's per-utterance tables, then score them.

    ``ref_cepstra`` caches the recordings' mel-cepstra ([T, order + 1] per utterance) across
    systems; it is filled here as needed.
    """
    sys_dir = out_dir / system.name
    utts = ref.utterances()
    inputs = audio_inputs(system.data) + audio_inputs(ref)
    here = {"data_dir": str(system.data.path.absolute()), "reference": str(ref.path.absolute()),
            "mcd": dataclasses.asdict(cfg), "judges": {j.name: j.source for j in judges}}
    old = {} if force else read_done(sys_dir / SOURCE) or {}
    same_audio = all(old.get(k) == here[k] for k in ("data_dir", "reference"))
    mcd_table = None
    if not system.reference:
        mcd_table = _open_table(sys_dir / MCD_TABLE, utts, inputs, same_audio and old.get("mcd") == here["mcd"],
                                _is_number)
    hyp_tables = {j.name: _open_table(sys_dir / j.name / HYP_TABLE, utts, inputs + list(j.inputs),
                                      same_audio and old.get("judges", {}).get(j.name) == j.source)
                  for j in judges}
    # after stale tables are gone and before new rows: the rows on disk always match it
    write_done(sys_dir / SOURCE, here)

    tables = [t for t in [mcd_table, *hyp_tables.values()] if t is not None]
    pending = [u for u in utts if any(u not in t.values for t in tables)]
    if pending:
        if not system.reference:
            check_rates(system.data, pending, cfg.sample_rate, system.name)
        log.info("%s: %d of %d utterances to evaluate", system.name, len(pending), len(utts))
        for judge in judges:
            if any(u not in hyp_tables[judge.name].values for u in pending):
                judge.load()  # now, so that loading is kept out of the per-utterance times
        timers = {name: _Timer() for name in [MCD_TABLE, *hyp_tables]}
        if mcd_table is not None:
            _reference_cepstra(ref, [u for u in pending if u not in mcd_table.values], cfg, ref_cepstra)
        audio = iter_utterance_audio(system.data, cfg.sample_rate, pending)
        for utt, samples in tqdm(audio, total=len(pending), desc=system.name, unit="utt", disable=None,
                                 file=sys.stderr):
            seconds = len(samples) / cfg.sample_rate
            if mcd_table is not None and utt not in mcd_table.values:
                t0 = time.perf_counter()
                mcd = mcd_of_cepstra(ref_cepstra[utt], mel_cepstrum(samples, cfg))
                _tick(timers[MCD_TABLE], t0, seconds)
                mcd_table.add(utt, f"{mcd:.4f}")
            for judge in judges:
                if utt not in hyp_tables[judge.name].values:
                    t0 = time.perf_counter()
                    words = judge.transcribe(resample(samples, cfg.sample_rate, judge.sample_rate))
                    _tick(timers[judge.name], t0, seconds)
                    hyp_tables[judge.name].add(utt, words)
        for name, timer in timers.items():
            if timer.count:
                log.info("%s", timer.line(f"{system.name}: {name}"))

    result = SystemResult(system.name, system.data.path, None)
    if mcd_table is not None:
        result.mcd_db = float(np.mean([float(mcd_table.values[u]) for u in utts]))
    for judge in judges:
        result.wer[judge.name] = score_dir(ref.path, sys_dir / judge.name)
        result.wer_files[judge.name] = sys_dir / judge.name / "wer"
    return result


def _tick(timer: _Timer, t0: float, audio_seconds: float) -> None:
    timer.seconds += time.perf_counter() - t0
    timer.count += 1
    timer.audio_seconds += audio_seconds


def _reference_cepstra(ref: DataDir, utts: Sequence[str], cfg: McdConfig, cache: dict[str, np.ndarray]) -> None:
    """Add the mel-cepstra of the recordings of ``utts`` that ``cache`` lacks."""
    wanted = [u for u in utts if u not in cache]
    for utt, samples in iter_utterance_audio(ref, cfg.sample_rate, wanted):
        cache[utt] = mel_cepstrum(samples, cfg)


def _utterance_audio(d: DataDir, utt: str, sample_rate: int) -> np.ndarray:
    return next(iter_utterance_audio(d, sample_rate, [utt]))[1]


def write_results(out_dir: Path, ref: DataDir, results: Sequence[SystemResult], judges: Sequence[Judge],
                  setup: dict) -> None:
    """OUT_DIR/results.md (the table, then the Kaldi %WER lines) and OUT_DIR/results.json
    (written last: the stage's done marker, holding ``setup`` for the skip check)."""
    header = ["System", "MCD (dB)"] + [f"WER {j.name} (%)" for j in judges]
    lines = [f"# TTS evaluation against {ref.path} ({len(ref.utt2spk)} utterances)", "",
             "MCD: DTW-aligned mel-cepstral distortion against the recording (c1..c24, 16 kHz); "
             "WER: the judge's transcripts against the reference text.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r.name, "n/a" if r.mcd_db is None else f"{r.mcd_db:.2f}"]
        cells += [f"{r.wer[j.name].error_rate:.2f}" for j in judges]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Judges:"] + [f"- {j.name}: {j.source}" for j in judges]
    wer_lines = [f"{r.wer[j.name].kaldi_line()} {r.wer_files[j.name]}" for r in results for j in judges]
    if wer_lines:
        lines += ["", "```", *wer_lines, "```"]
    with atomic_write(out_dir / RESULTS_MD) as f:
        f.write("\n".join(lines) + "\n")
    write_done(out_dir / RESULTS_JSON, {
        "reference": str(ref.path), "utterances": len(ref.utt2spk), "setup": setup,
        "systems": [{
            "name": r.name, "data_dir": str(r.data_dir), "mcd_db": r.mcd_db,
            "wer": {name: {"wer": s.error_rate, "errors": s.errors, "words": s.ref_words, "ins": s.ins,
                           "del": s.dels, "sub": s.subs, "ser": s.sentence_error_rate}
                    for name, s in r.wer.items()},
        } for r in results],
    })


def evaluate_tts(ref_dir: str | Path, systems: Sequence[tuple[str, str | Path]], out_dir: str | Path,
                 judges: Sequence[Judge], ref_name: str = "recordings", plot_utt: str | None = None,
                 cfg: McdConfig = McdConfig(), force: bool = False) -> bool:
    """Evaluate ``systems`` ((name, data dir) pairs) and the recordings of ``ref_dir`` by MCD and
    by each judge's WER; write OUT_DIR as the module says. Returns False when the results
    were complete and nothing was done."""
    out_dir = Path(out_dir)
    ref = DataDir.read(ref_dir)
    untranscribed = [u for u in ref.utterances() if u not in (ref.text or {})]
    if untranscribed:
        raise DataDirError(f"{ref.path / 'text'}: no transcript of {few_ids(untranscribed)}; the reference needs "
                           f"the text the WER is computed against: add it, or run: speech fix-data-dir {ref.path}")
    _check_name(ref_name, RESERVED_SYSTEM_NAMES, f"--ref-name {ref_name}")
    rows = [System(ref_name, ref, reference=True)]
    for name, path in systems:
        _check_name(name, {r.name for r in rows} | RESERVED_SYSTEM_NAMES, f"system {name}={path}")
        rows.append(System(name, DataDir.read(path)))
    names = set()
    for j in judges:
        _check_name(j.name, names | RESERVED_JUDGE_NAMES, f"judge '{j.name}' ({j.source})")
        names.add(j.name)
    if len(rows) == 1 and not judges:
        raise SpeechError("nothing to evaluate: give systems as NAME=DATA_DIR, or a judge (--judge-model, or "
                          "PocketSphinx without --no-pocketsphinx)")
    for row in rows[1:]:
        check_system(row.data, ref, row.name)
    utts = ref.utterances()
    plot_utt = utts[0] if plot_utt is None else plot_utt
    if plot_utt not in ref.utt2spk:
        raise SpeechError(f"--plot-utt {plot_utt}: not an utterance of {ref.path / 'utt2spk'}; give one of "
                          f"{few_ids(utts)}")

    setup = {"reference": str(ref.path.absolute()), "reference_name": ref_name,
             "systems": {r.name: str(r.data.path.absolute()) for r in rows[1:]},
             "judges": {j.name: j.source for j in judges}, "mcd": dataclasses.asdict(cfg), "plot_utt": plot_utt}
    inputs = [p for r in rows for p in audio_inputs(r.data) + [r.data.path / "text"]]
    inputs += [p for j in judges for p in j.inputs]
    outputs = [out_dir / RESULTS_MD, out_dir / SPECTROGRAMS, out_dir / RESULTS_JSON]
    if skip("evaluate-tts", f"{out_dir / RESULTS_MD} holds these {len(rows)} rows", outputs, inputs,
            lambda: (read_done(out_dir / RESULTS_JSON) or {}).get("setup") == setup, force):
        return False

    ref_cepstra: dict[str, np.ndarray] = {}
    results = [evaluate_system(r, ref, out_dir, judges, cfg, ref_cepstra, force) for r in rows]
    mel = MelConfig(sample_rate=cfg.sample_rate)
    panels = [(r.name, _utterance_audio(r.data, plot_utt, mel.sample_rate)) for r in rows]
    plot_spectrograms(out_dir / SPECTROGRAMS, panels, mel)
    write_results(out_dir, ref, results, judges, setup)
    for r in results:
        mcd = "" if r.mcd_db is None else f"MCD {r.mcd_db:.2f} dB  "
        print(f"{r.name}: {mcd}" + "  ".join(f"WER[{n}] {s.error_rate:.2f}" for n, s in r.wer.items()))
    print(f"wrote {out_dir / RESULTS_MD}")
    return True


def _check_name(name: str, taken: set[str], what: str) -> None:
    if not NAME.fullmatch(name):
        raise SpeechError(f"{what}: the name '{name}' names a directory; use letters, digits and . _ + - only")
    if name in taken:
        raise SpeechError(f"{what}: the name '{name}' is taken (by another system or judge, or reserved); "
                          "give each a different name")


def _named(arg: str, what: str, required: bool) -> tuple[str | None, Path]:
    """``NAME=PATH`` -> (NAME, PATH); anything else is (None, the whole argument as a path),
    unless a name is ``required``."""
    name, sep, path = arg.partition("=")
    if sep and NAME.fullmatch(name) and path:
        return name, Path(path)
    if required:
        raise SpeechError(f"'{arg}': expected {what}, e.g. gru=exp/voc_gru/synth_test")
    return None, Path(arg)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech evaluate-tts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("systems", nargs="*", metavar="NAME=DATA_DIR", help="a system's synthesized audio")
    p.add_argument("--ref", type=Path, required=True, help="data dir of the recordings (wav.scp, text, utt2spk)")
    p.add_argument("--out-dir", type=Path, required=True, help="where results and per-utterance tables go")
    p.add_argument("--ref-name", default="recordings", help="the recordings' row in the table (default recordings)")
    p.add_argument("--judge-model", action="append", default=[], metavar="[NAME=]MODEL_DIR",
                   help="an ASR model dir (speech train-asr) as a judge; NAME defaults to its dir name; repeatable")
    p.add_argument("--no-pocketsphinx", action="store_true", help="leave out the PocketSphinx judge")
    p.add_argument("--device", default="cpu", help="device of the --judge-model judges (default cpu)")
    p.add_argument("--plot-utt", help="the utterance drawn in OUT_DIR/spectrograms.png (default: the first)")
    p.add_argument("--force", action="store_true", help="compute everything again")
    args = p.parse_args(argv)

    systems = [_named(arg, "NAME=DATA_DIR", required=True) for arg in args.systems]
    judges: list[Judge] = [] if args.no_pocketsphinx else [PocketSphinxJudge()]
    for arg in args.judge_model:
        name, model_dir = _named(arg, "[NAME=]MODEL_DIR", required=False)
        judges.append(AsrJudge(model_dir, name, args.device))
    setup_logging(args.out_dir / "log" / "evaluate_tts.log")
    evaluate_tts(args.ref, systems, args.out_dir, judges, args.ref_name, args.plot_utt, force=args.force)
    return 0
