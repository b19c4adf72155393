"""Collect the scores of a recipe into a Markdown table (RESULTS.md).

``speech make-results EXP_DIR`` reads every EXP_DIR/<system>/decode_<set>/wer written by
``speech score`` (and the cer beside it, if any) and writes one table row per system and test
set, sorted by system then set, followed by the raw Kaldi ``%WER`` lines, as Kaldi recipes
keep them in their RESULTS files.

Before them comes the comparison of the systems that are model dirs (config.yaml with its
``kind:``; other exp subdirs are left out of it), as EESEN compared itself with Kaldi: a row
per system and search, a WER column per test set, then training time, decoding real-time
factor and model size. A decode dir named after another's set plus a suffix
(decode_test_lexicon beside decode_test) is a search of that set; without one it is the
system's own search (greedy CTC for an asr model, HCLG for an hmm). What a system did not
record is "n/a":

- training time: ``seconds`` of EXP_DIR/<system>/train.done (every trainer writes it);
- RTF: decoding time over audio duration, from the ``decoded ... (RTF r)`` line of each
  decode dir's log/decode.log (or of its jobs' log/decode.J.log), over all the row's sets;
- size: the number of values stored in model.safetensors (read from its header; for an
  hmm these are the GMM tables, padded to the largest mixture, so more than its free
  parameters) and the file's size in MB.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key
from speech.model_dir import CONFIG, WEIGHTS, read_kind
from speech.stage import read_done

_WER_RE = re.compile(r"%WER (\S+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]")
_SER_RE = re.compile(r"%SER (\S+) \[ (\d+) / (\d+) \]")
_CER_RE = re.compile(r"%CER (\S+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]")
# as decode-asr and decode-hmm log it
_RTF_RE = re.compile(r"decoded \d+ utterances \(([\d.]+) s of audio\) in [\d.]+ s \(RTF ([\d.]+)\)")
_SEARCH_NAMES = {"lm": "LM", "wfst": "WFST"}


@dataclass
class Result:
    """The scores of one decode directory."""

    system: str  # the exp subdirectory, e.g. asr_blstm_ctc
    test_set: str  # the decode directory without its "decode_" prefix
    wer_path: Path
    wer_line: str  # Kaldi's %WER line, verbatim
    wer: str
    errors: int
    words: int
    ins: int
    dels: int
    subs: int
    ser: str | None  # "%SER" rate as written, None when the file has no %SER line
    cer: str | None  # "%CER" rate from the cer file, None when there is none


def read_result(wer_path: Path) -> Result:
    """Parse DECODE_DIR/wer (and DECODE_DIR/cer when present)."""
    text = wer_path.read_text(encoding="utf-8")
    wer = _WER_RE.search(text)
    if wer is None:
        raise SpeechError(f"{wer_path}: no '%WER ... [ E / N, I ins, D del, S sub ]' line; re-run speech score on {wer_path.parent}")
    ser = _SER_RE.search(text)
    cer = None
    cer_path = wer_path.with_name("cer")
    if cer_path.is_file():
        match = _CER_RE.search(cer_path.read_text(encoding="utf-8"))
        if match is None:
            raise SpeechError(f"{cer_path}: no '%CER ...' line; re-run speech score --cer on {wer_path.parent}")
        cer = match.group(1)
    decode_dir = wer_path.parent
    return Result(
        system=decode_dir.parent.name,
        test_set=decode_dir.name.removeprefix("decode_"),
        wer_path=wer_path,
        wer_line=wer.group(0),
        wer=wer.group(1),
        errors=int(wer.group(2)),
        words=int(wer.group(3)),
        ins=int(wer.group(4)),
        dels=int(wer.group(5)),
        subs=int(wer.group(6)),
        ser=ser.group(1) if ser else None,
        cer=cer,
    )


def collect_results(exp_dir: str | Path) -> list[Result]:
    """Every EXP_DIR/*/decode_*/wer, sorted by system then test set (byte order)."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise SpeechError(f"{exp_dir}: no such directory; pass the recipe's exp directory")
    results = [read_result(p) for p in exp_dir.glob("*/decode_*/wer") if p.is_file()]
    return sorted(results, key=lambda r: (kaldi_sort_key(r.system), kaldi_sort_key(r.test_set)))


@dataclass
class System:
    """What a model dir says about itself, for the comparison table."""

    name: str
    kind: str
    seconds: float | None  # training time, None when train.done does not record it
    values: int | None  # numbers stored in model.safetensors, None when there is none
    megabytes: float | None


@dataclass
class Row:
    """One search of one system in the comparison table."""

    system: System
    search: str  # the decode dirs' suffix after the set, "" for the system's own search
    results: dict[str, Result]  # by test set

    @property
    def label(self) -> str:
        name, kind = self.system.name, self.system.kind
        own = f"{name} (HCLG)" if kind == "hmm" else f"{name} greedy" if kind == "asr" else name
        if not self.search:
            return own
        # an hmm searches its HCLG whatever it adds; an asr model's other searches replace greedy
        return f"{own if kind == 'hmm' else name} + {_SEARCH_NAMES.get(self.search, self.search)}"

    def rtf(self) -> float | None:
        """Decoding time over audio duration across the row's sets, None when no log says."""
        logged = [r for r in map(_decode_rtf, self.results.values()) if r is not None]
        audio = sum(seconds for seconds, _ in logged)
        return sum(seconds * rtf for seconds, rtf in logged) / audio if audio > 0 else None


def _decode_rtf(result: Result) -> tuple[float, float] | None:
    """(seconds of audio, RTF) of the last decoding of DECODE_DIR: its log/decode.log, or
    when it ran as jobs (decode-asr/decode-hmm --nj), the sum over its newer
    log/decode.J.log files (decoding seconds of all jobs over their audio)."""
    log_dir = result.wer_path.parent / "log"
    single, jobs = log_dir / "decode.log", sorted(log_dir.glob("decode.*.log"))
    if jobs and (not single.is_file() or min(p.stat().st_mtime for p in jobs) > single.stat().st_mtime):
        logs = jobs
    elif single.is_file():
        logs = [single]
    else:
        return None
    audio = elapsed = 0.0
    for path in logs:
        found = _RTF_RE.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not found:
            return None
        seconds, rtf = float(found[-1][0]), float(found[-1][1])
        audio, elapsed = audio + seconds, elapsed + seconds * rtf
    return (audio, elapsed / audio) if audio > 0 else None


def read_system(system_dir: Path) -> System | None:
    """The comparison's view of EXP_DIR/<system>; None when it is not a model dir."""
    if not (system_dir / CONFIG).is_file():
        return None
    kind, _ = read_kind(system_dir)
    done = system_dir / "train.done"
    seconds = (read_done(done) or {}).get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
        raise SpeechError(f"{done}: 'seconds' is {seconds!r}, not a number; correct it or remove the line")
    weights = system_dir / WEIGHTS
    values = megabytes = None
    if weights.is_file():
        values, megabytes = stored_values(weights), weights.stat().st_size / 1e6
    return System(system_dir.name, kind, seconds, values, megabytes)


def stored_values(path: Path) -> int:
    """The number of values of every tensor of a safetensors file, from its header alone."""
    try:
        with open(path, "rb") as f:
            size, total = int.from_bytes(f.read(8), "little"), path.stat().st_size
            if not 2 <= size <= total - 8:
                raise ValueError(f"a header of {size} bytes does not fit in its {total}")
            header = json.loads(f.read(size))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    except (ValueError, TypeError, KeyError) as e:
        raise SpeechError(f"{path}: not a safetensors file ({e}); train the model again") from None


def split_decode_name(name: str, sets: list[str]) -> tuple[str, str] | None:
    """(test set, search) of a decode dir's name without "decode_": the longest of ``sets`` it
    is or starts with (then "_" and the search); None when it is none of them."""
    for s in sorted(sets, key=len, reverse=True):
        if name == s:
            return s, ""
        if name.startswith(s + "_"):
            return s, name[len(s) + 1:]
    return None


def compare(results: list[Result], exp_dir: Path, sets: list[str] | None = None,
            systems: list[str] | None = None) -> tuple[list[str], list[Row]]:
    """(test sets, rows) of the comparison table. ``sets`` and ``systems`` choose the columns
    and rows and their order; by default every set and model dir, in byte order, where a
    decode dir's name that extends another's (test_lexicon beside test) is not a set."""
    if systems is not None:
        missing = sorted({s for s in systems if not any(r.system == s for r in results)})
        if missing:
            raise SpeechError(f"--systems: no scored decode dir of {', '.join(missing)} in {exp_dir}; "
                              f"run their decoding and scoring first or leave them out")
    names = systems if systems is not None else sorted({r.system for r in results}, key=kaldi_sort_key)
    info = {name: read_system(exp_dir / name) for name in names}
    if systems is not None:
        not_models = [name for name in systems if info[name] is None]
        if not_models:
            raise SpeechError(f"--systems: {', '.join(not_models)} in {exp_dir} has no {CONFIG}, so it is not a "
                              f"model dir to compare; leave it out")
    candidates = [r for r in results if info.get(r.system) is not None]
    if sets is None:
        names_seen = {r.test_set for r in candidates}
        sets = sorted((n for n in names_seen if not any(n.startswith(m + "_") for m in names_seen)),
                      key=kaldi_sort_key)
    rows: dict[tuple[str, str], Row] = {}
    for r in candidates:
        split = split_decode_name(r.test_set, sets)
        if split is not None:
            test_set, search = split
            row = rows.setdefault((r.system, search), Row(info[r.system], search, {}))
            row.results[test_set] = r
    unused = [s for s in sets if not any(s in row.results for row in rows.values())]
    if unused:
        raise SpeechError(f"--sets: no scored decode dir of {', '.join(unused)} among the model dirs of {exp_dir} "
                          f"(decode_<set> or decode_<set>_<search>); check the names")
    order = {name: i for i, name in enumerate(names)}
    ranked = sorted(rows.values(), key=lambda row: (order[row.system.name], row.search != "",
                                                    kaldi_sort_key(row.search)))
    return sets, ranked


def format_comparison(sets: list[str], rows: list[Row]) -> list[str]:
    """The comparison table and its caption, as Markdown lines."""
    header = ["System", *(f"{s} WER (%)" for s in sets), "Training time", "Decoding RTF",
              "Model size (stored values)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        system, rtf = row.system, row.rtf()
        size = "n/a" if system.values is None else f"{_count(system.values)} ({_megabytes(system.megabytes)})"
        cells = [row.label, *(row.results[s].wer if s in row.results else "-" for s in sets),
                 "n/a" if system.seconds is None else _duration(system.seconds),
                 "n/a" if rtf is None else f"{rtf:.4f}", size]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Training time (h:mm:ss) from train.done; decoding RTF: decoding time / audio duration over the "
              "row's sets, from their log/decode.log; model size: values stored in model.safetensors (an HMM's "
              "GMM tables padded to the largest mixture) and its MB on disk; -: not decoded; n/a: not recorded."]
    return lines


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def _megabytes(mb: float) -> str:
    return f"{mb:.1f} MB" if mb >= 1 else f"{mb:.2g} MB"  # a monophone HMM is a few kB


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def format_results(results: list[Result], title: str, base: Path, comparison: list[str] | None = None) -> str:
    """The Markdown document: the ``comparison`` lines when given, a table of every decode dir,
    then the %WER lines with their paths relative to ``base``."""
    with_cer = any(r.cer is not None for r in results)
    header = ["System", "Test set", "WER (%)", "Errors / words", "Ins / del / sub", "SER (%)"]
    if with_cer:
        header.append("CER (%)")
    rows = []
    for r in results:
        row = [r.system, r.test_set, r.wer, f"{r.errors} / {r.words}", f"{r.ins} / {r.dels} / {r.subs}", r.ser or "-"]
        if with_cer:
            row.append(r.cer or "-")
        rows.append(row)
    lines = [f"# {title}", ""]
    if comparison:
        lines += [*comparison, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "```"]
    lines += [f"{r.wer_line} {_relative(r.wer_path, base)}" for r in results]
    lines += ["```", ""]
    return "\n".join(lines)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech make-results",
        description="Collect EXP_DIR/*/decode_*/wer into Markdown tables: one row per system and search (WER per "
                    "test set, training time, decoding RTF, model size), one per decode dir.",
    )
    parser.add_argument("exp_dir", help="the recipe's exp directory")
    parser.add_argument("-o", "--output", help="Markdown file to write (default: RESULTS.md beside EXP_DIR)")
    parser.add_argument("--title", default="Results", help="heading of the document (default: %(default)s)")
    parser.add_argument("--sets", nargs="+", metavar="SET",
                        help="test sets of the comparison table, in this order (default: every set, byte order)")
    parser.add_argument("--systems", nargs="+", metavar="SYSTEM",
                        help="model dirs of the comparison table, in this order (default: all, byte order)")
    args = parser.parse_args(argv)

    exp_dir = Path(args.exp_dir)
    results = collect_results(exp_dir)
    if not results:
        raise SpeechError(f"{exp_dir}: no results found (no {exp_dir}/*/decode_*/wer); run the decoding and scoring stages first")
    output = Path(args.output) if args.output else exp_dir.resolve().parent / "RESULTS.md"
    sets, rows = compare(results, exp_dir, args.sets, args.systems)
    comparison = format_comparison(sets, rows) if rows else None
    document = format_results(results, args.title, exp_dir.resolve().parent, comparison)
    with atomic_write(output) as f:
        f.write(document)
    print(document, end="")
    print(f"wrote {output}")
    return 0
