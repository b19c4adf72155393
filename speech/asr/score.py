"""Word (and character) error rates of a decode directory, in Kaldi's formats.

``speech score DATA_DIR DECODE_DIR`` aligns every reference transcript of DATA_DIR/text with
its hypothesis in DECODE_DIR/text (Levenshtein alignment by kaldialign) and writes:

- DECODE_DIR/wer: Kaldi's ``compute-wer`` lines::

      %WER 7.28 [ 411 / 5643, 58 ins, 38 del, 315 sub ]
      %SER 12.34 [ 12 / 100 ]

  plus ``Scored 100 sentences, 3 not present in hyp.`` when hypotheses are missing (those
  utterances are scored as empty hypotheses, i.e. all deletions);
- DECODE_DIR/scoring/per_utt: the alignment of every utterance as Kaldi's
  ``wer_per_utt_details.pl`` prints it (``ref``/``hyp``/``op`` rows in centred columns,
  ``***`` for the missing side of an insertion or deletion, ``#csid`` = correct,
  substituted, inserted, deleted counts in that order);
- DECODE_DIR/scoring/per_spk when DATA_DIR has utt2spk: one row of counts and rates per
  speaker and a SUM row, like Kaldi's ``wer_per_spk_details.pl`` (unseen-voice test sets
  are judged voice by voice);
- DECODE_DIR/cer with ``--cer``: a ``%CER`` line over characters, spaces left out.

From Python, :func:`compute_error_stats` scores any token sequences (words, characters or
token ids), e.g. the dev-set CER during training.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Hashable, Mapping, Sequence

import kaldialign

from speech.errors import SpeechError
from speech.fileio import atomic_write, kaldi_sort_key, read_key_value

GAP = "***"  # printed in per_utt for the empty side of an insertion or deletion

# One aligned position: (ref token, hyp token); None on the hyp side is a deletion, on the
# ref side an insertion.
AlignedPair = tuple[Hashable | None, Hashable | None]


@dataclass
class ErrorStats:
    """Error counts over a set of utterances.

    ``ref_words`` counts reference tokens: words for a WER, characters for a CER.
    """

    ref_words: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    sentences: int = 0
    sentence_errors: int = 0
    missing: int = 0  # reference utterances without a hypothesis (scored as empty)

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def error_rate(self) -> float:
        """Errors per 100 reference tokens (0 when there are neither tokens nor errors)."""
        return _percent(self.errors, self.ref_words)

    @property
    def sentence_error_rate(self) -> float:
        return _percent(self.sentence_errors, self.sentences)

    def kaldi_line(self, name: str = "WER") -> str:
        """``%WER 7.28 [ 411 / 5643, 58 ins, 38 del, 315 sub ]`` (``name`` replaces WER)."""
        return (
            f"%{name} {self.error_rate:.2f} [ {self.errors} / {self.ref_words}, "
            f"{self.ins} ins, {self.dels} del, {self.subs} sub ]"
        )

    def __add__(self, other: ErrorStats) -> ErrorStats:
        """The counts of both sets of utterances (every count is a sum over utterances)."""
        return ErrorStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def ser_line(self) -> str:
        """``%SER 12.34 [ 12 / 100 ]``."""
        return f"%SER {self.sentence_error_rate:.2f} [ {self.sentence_errors} / {self.sentences} ]"


def _percent(count: int, total: int) -> float:
    # compute-wer divides by zero here and prints inf/nan; a rate of 0 for nothing-vs-nothing
    # keeps an empty reference set from poisoning averages, any error on it is infinite.
    if total == 0:
        return 0.0 if count == 0 else float("inf")
    return 100.0 * count / total


def align(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> list[AlignedPair]:
    """Minimum edit-distance alignment of two token sequences (Kaldi's costs: 1 per error).

    Tokens can be any hashable values (words, characters, ids); they are mapped to ints first
    so no token can collide with the gap symbol.
    """
    sym2int: dict[Hashable, int] = {}
    refi = [sym2int.setdefault(t, len(sym2int) + 1) for t in ref]
    hypi = [sym2int.setdefault(t, len(sym2int) + 1) for t in hyp]
    int2sym: dict[int, Hashable | None] = {i: t for t, i in sym2int.items()}
    int2sym[0] = None
    return [(int2sym[r], int2sym[h]) for r, h in kaldialign.align(refi, hypi, 0)]


def align_utterances(
    refs: Mapping[str, str | Sequence[Hashable]], hyps: Mapping[str, str | Sequence[Hashable]]
) -> dict[str, list[AlignedPair]]:
    """Align each reference with its hypothesis; a missing hypothesis counts as empty.

    A ``str`` value is split into words at whitespace; any other sequence is taken as the
    tokens themselves (pass ``list(text.replace(" ", ""))`` or token ids for a CER).
    Raises SpeechError naming hypotheses whose utterance has no reference.
    """
    extra = sorted((u for u in hyps if u not in refs), key=kaldi_sort_key)
    if extra:
        shown = " ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise SpeechError(
            f"{len(extra)} hypothes{'i' if len(extra) == 1 else 'e'}s for utterances not in the "
            f"reference: {shown}; score against the data directory that was decoded"
        )
    return {
        utt: align(_tokens(refs[utt]), _tokens(hyps.get(utt, ())))
        for utt in sorted(refs, key=kaldi_sort_key)
    }


def _tokens(value: str | Sequence[Hashable]) -> Sequence[Hashable]:
    return value.split() if isinstance(value, str) else value


def stats_from_alignments(alignments: Mapping[str, list[AlignedPair]], missing: int = 0) -> ErrorStats:
    """Sum the edit operations of per-utterance alignments."""
    stats = ErrorStats(missing=missing)
    for pairs in alignments.values():
        ins = sum(r is None for r, _ in pairs)
        dels = sum(h is None for _, h in pairs)
        subs = sum(r is not None and h is not None and r != h for r, h in pairs)
        stats.ref_words += len(pairs) - ins
        stats.ins += ins
        stats.dels += dels
        stats.subs += subs
        stats.sentences += 1
        stats.sentence_errors += (ins + dels + subs) > 0
    return stats


def compute_error_stats(
    refs: Mapping[str, str | Sequence[Hashable]], hyps: Mapping[str, str | Sequence[Hashable]]
) -> ErrorStats:
    """Error counts of ``hyps`` against ``refs`` (utterance id -> text or token sequence).

    A ``str`` is split into words; a list/tuple is scored token by token, so
    ``{u: list(t.replace(" ", ""))}`` gives a character error rate and lists of token ids work
    too. Reference utterances without a hypothesis are scored as empty and counted in
    ``missing``; a hypothesis without a reference raises SpeechError.
    """
    missing = sum(u not in hyps for u in refs)
    return stats_from_alignments(align_utterances(refs, hyps), missing)


def chars(text: str) -> list[str]:
    """The characters of ``text`` without whitespace: the tokens of a CER."""
    return [ch for ch in text if not ch.isspace()]


def format_per_utt(alignments: Mapping[str, list[AlignedPair]]) -> list[str]:
    """Kaldi's per-utterance lines (``utt ref``, ``utt hyp``, ``utt op``, ``utt #csid``).

    Each aligned position is a column as wide as its widest cell, cells centred (the extra
    space on the left, as wer_per_utt_details.pl does), columns two spaces apart; trailing
    spaces are dropped.
    """
    lines = []
    for utt, pairs in alignments.items():
        rows: dict[str, list[str]] = {"ref": [], "hyp": [], "op": []}
        counts = {"C": 0, "S": 0, "I": 0, "D": 0}
        for r, h in pairs:
            op = "I" if r is None else "D" if h is None else "C" if r == h else "S"
            counts[op] += 1
            cells = (GAP if r is None else str(r), GAP if h is None else str(h), op)
            width = max(map(len, cells))
            for row, cell in zip(rows.values(), cells):
                right = (width - len(cell)) // 2
                row.append(" " * (width - len(cell) - right) + cell + " " * right)
        lines.append(f"{utt} ref  " + "  ".join(rows["ref"]))
        lines.append(f"{utt} hyp  " + "  ".join(rows["hyp"]))
        lines.append(f"{utt} op   " + "  ".join(rows["op"]))
        lines.append(f"{utt} #csid {counts['C']} {counts['S']} {counts['I']} {counts['D']}")
    return [line.rstrip() for line in lines]


def format_per_spk(alignments: Mapping[str, list[AlignedPair]], utt2spk: Mapping[str, str]) -> list[str]:
    """A table of error counts and rates (%WER, %SER) per speaker, then the SUM over all."""
    by_spk: dict[str, dict[str, list[AlignedPair]]] = {}
    for utt, pairs in alignments.items():
        by_spk.setdefault(utt2spk.get(utt, "<unknown>"), {})[utt] = pairs
    rows = [(spk, stats_from_alignments(by_spk[spk])) for spk in sorted(by_spk, key=kaldi_sort_key)]
    rows.append(("SUM", stats_from_alignments(alignments)))
    header = ("SPEAKER", "#SENT", "#WORD", "Sub", "Ins", "Del", "Err", "%WER", "%SER")
    table = [header] + [
        (spk, str(st.sentences), str(st.ref_words), str(st.subs), str(st.ins), str(st.dels),
         str(st.errors), f"{st.error_rate:.2f}", f"{st.sentence_error_rate:.2f}")
        for spk, st in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        "  ".join([row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])])
        for row in table
    ]


def score_dir(data_dir: str | Path, decode_dir: str | Path, hyp: str | Path | None = None, cer: bool = False) -> ErrorStats:
    """Score DECODE_DIR (hypotheses in ``hyp``, default DECODE_DIR/text) against DATA_DIR/text.

    Writes DECODE_DIR/wer, DECODE_DIR/scoring/per_utt, DECODE_DIR/scoring/per_spk (when
    DATA_DIR/utt2spk exists) and, with ``cer``, DECODE_DIR/cer.
    Returns the word-level statistics.
    """
    decode_dir = Path(decode_dir)
    refs = read_key_value(Path(data_dir) / "text", allow_empty_value=True)
    hyps = read_key_value(Path(hyp) if hyp is not None else decode_dir / "text", allow_empty_value=True)
    alignments = align_utterances(refs, hyps)
    missing = sum(u not in hyps for u in refs)
    stats = stats_from_alignments(alignments, missing)

    lines = [stats.kaldi_line(), stats.ser_line()]
    if missing:
        lines.append(f"Scored {stats.sentences} sentences, {missing} not present in hyp.")
    with atomic_write(decode_dir / "wer") as f:
        f.write("\n".join(lines) + "\n")
    with atomic_write(decode_dir / "scoring" / "per_utt") as f:
        f.writelines(line + "\n" for line in format_per_utt(alignments))
    utt2spk_file = Path(data_dir) / "utt2spk"
    if utt2spk_file.is_file():
        with atomic_write(decode_dir / "scoring" / "per_spk") as f:
            f.writelines(line + "\n" for line in format_per_spk(alignments, read_key_value(utt2spk_file)))
    if cer:
        char_stats = compute_error_stats(
            {u: chars(t) for u, t in refs.items()}, {u: chars(t) for u, t in hyps.items()}
        )
        with atomic_write(decode_dir / "cer") as f:
            f.write(char_stats.kaldi_line("CER") + "\n")
    return stats


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="speech score",
        description="WER of a decode directory: writes DECODE_DIR/wer (Kaldi %WER/%SER lines) and "
        "DECODE_DIR/scoring/per_utt (per-utterance alignments) and DECODE_DIR/scoring/per_spk "
        "(per-speaker error rates).",
    )
    parser.add_argument("data_dir", help="data directory whose text is the reference")
    parser.add_argument("decode_dir", help="decode directory; its text holds the hypotheses")
    parser.add_argument("--hyp", help="hypothesis text file (default: DECODE_DIR/text)")
    parser.add_argument("--cer", action="store_true", help="also write DECODE_DIR/cer (characters, spaces left out)")
    args = parser.parse_args(argv)

    stats = score_dir(args.data_dir, args.decode_dir, args.hyp, args.cer)
    print(f"{stats.kaldi_line()} {Path(args.decode_dir) / 'wer'}")
    if stats.missing:
        print(f"{stats.missing} of {stats.sentences} utterances had no hypothesis and were scored as empty")
    return 0
