"""Collect the scores of a recipe into a Markdown table (RESULTS.md).

``speech make-results EXP_DIR`` reads every EXP_DIR/<system>/decode_<set>/wer written by
``speech score`` (and the cer beside it, if any) and writes one table row per system and test
set, sorted by system then set, followed by the raw Kaldi ``%WER`` lines, as Kaldi recipes
keep them in their RESULTS files.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key

_WER_RE = re.compile(r"%WER (\S+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]")
_SER_RE = re.compile(r"%SER (\S+) \[ (\d+) / (\d+) \]")
_CER_RE = re.compile(r"%CER (\S+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]")


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


def format_results(results: list[Result], title: str, base: Path) -> str:
    """The Markdown document: a table, then the %WER lines with their paths relative to ``base``."""
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
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
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
        description="Collect EXP_DIR/*/decode_*/wer into a Markdown table (one row per system and test set).",
    )
    parser.add_argument("exp_dir", help="the recipe's exp directory")
    parser.add_argument("-o", "--output", help="Markdown file to write (default: RESULTS.md beside EXP_DIR)")
    parser.add_argument("--title", default="Results", help="heading of the document (default: %(default)s)")
    args = parser.parse_args(argv)

    exp_dir = Path(args.exp_dir)
    results = collect_results(exp_dir)
    if not results:
        raise SpeechError(f"{exp_dir}: no results found (no {exp_dir}/*/decode_*/wer); run the decoding and scoring stages first")
    output = Path(args.output) if args.output else exp_dir.resolve().parent / "RESULTS.md"
    document = format_results(results, args.title, exp_dir.resolve().parent)
    with atomic_write(output) as f:
        f.write(document)
    print(document, end="")
    print(f"wrote {output}")
    return 0
