"""Phone boundary accuracy of a forced alignment against a reference (``speech score-alignment``).

Both sides are phone CTM files (``<utt> <channel> <start> <duration> <phone> [<confidence>]``);
any aligner's (HMM, CTC) is scored against a reference with known times, such as
``speech make-align-ref``'s festival speech. Phone labels are compared upper case without
stress digits or Kaldi word-position suffixes (``ah0_B`` is ``AH``).

Definitions, utterance by utterance:

- Silence (``SIL``, ``SP``, ``PAU``, ``<SIL>``) is not a phone to match: aligners differ in
  where, and whether, they write it. Only the other phones are compared.
- The reference's *boundaries* are the times where one phone ends and the next begins,
  the utterance's first start and last end excluded (nothing lies beyond them). Where two
  phones touch, that is one boundary between them; where silence lies between them, each
  edge of the silence is a boundary with one phone beside it. So the onset of speech after
  the leading silence counts, and a pause is two boundaries.
- The phone sequences of reference and hypothesis are aligned by edit distance
  (Levenshtein). A boundary is *scored* when each phone beside it is matched to a
  hypothesis phone of the same label and, where there are two, their matches follow each
  other in the hypothesis; boundaries touching a substituted, deleted or inserted phone
  are skipped and counted, and so are the utterances whose sequences differ at all.
- A scored boundary's error is the distance from its reference time to the matching edge
  of the hypothesis: the end of the left phone's match or the start of the right one's.
  Where both exist and differ (the hypothesis put a silence the reference lacks between
  them), the error is the larger of the two.
- The *signed* error is hypothesis minus reference time of that edge (positive: the
  aligner puts the boundary late); its median shows a bias that absolute errors hide.
- Within tolerance: error <= ``--tolerance`` (default 20 ms, the usual threshold; HMM
  aligners place 80-89 % of TIMIT's boundaries within it).

Reference utterances missing from the hypothesis are reported and not scored;
hypothesis utterances absent from the reference are ignored.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

from speech.errors import SpeechError
from speech.fileio import atomic_write

SILENCE = frozenset({"SIL", "SP", "PAU", "<SIL>"})
CTM_FIELDS = "<utt> <channel> <start> <duration> <phone> [<confidence>]"
# Two phones of the reference touch when less than this lies between them: a CTM written
# to the millisecond puts start + duration within float rounding of the next start.
TOUCH = 0.0005
# Errors are sums of CTM decimals: 0.21 - 0.2 is 0.009999999999999981, not above 10 ms
_EPS = 1e-9
_POSITION = re.compile(r"_[BIES]$")


def table_header(tolerance: float) -> str:
    """The header of the markdown table that :meth:`AlignmentScore.row` writes rows of."""
    return (f"| aligner | boundaries | scored | within {tolerance * 1000:g} ms | mean error | median signed error |\n"
            "|---|---|---|---|---|---|")


class Phone(NamedTuple):
    label: str
    start: float
    end: float


def normalize_label(label: str) -> str:
    """``ah0_B`` -> ``AH``: upper case, no word-position suffix, no stress digit."""
    return _POSITION.sub("", label.upper()).rstrip("0123456789")


def _number(text: str, what: str, path: Path, lineno: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpeechError(f"{path}:{lineno}: {what} '{text}' is not a number; expected '{CTM_FIELDS}'") from None


def read_ctm(path: str | Path) -> dict[str, list[Phone]]:
    """Utterance -> its phones in time order (labels normalised; silence kept).

    Blank lines and ``;;`` comments are skipped. Raises SpeechError ``file:line: ...`` for
    a malformed line and ``file: ...`` for a file that cannot be read.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SpeechError(f"{path}: no such file; give a phone CTM ({CTM_FIELDS})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpeechError(f"{path}: cannot be read as UTF-8 text ({e})") from None
    utts: dict[str, list[Phone]] = {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith(";;"):
            continue
        if len(fields) not in (5, 6):
            raise SpeechError(f"{path}:{lineno}: {len(fields)} fields; expected '{CTM_FIELDS}'")
        start = _number(fields[2], "start", path, lineno)
        duration = _number(fields[3], "duration", path, lineno)
        if start < 0 or duration < 0:
            raise SpeechError(f"{path}:{lineno}: negative start or duration; expected '{CTM_FIELDS}'")
        utts.setdefault(fields[0], []).append(Phone(normalize_label(fields[4]), start, start + duration))
    for phones in utts.values():
        phones.sort(key=lambda p: p.start)
    return utts


class Boundary(NamedTuple):
    time: float
    left: int | None  # index of the phone ending here among the non-silence phones, or None
    right: int | None  # index of the phone starting here, or None


def reference_boundaries(phones: Sequence[Phone], speech: Sequence[Phone]) -> list[Boundary]:
    """The boundaries (see the module's doc) of an utterance's ``phones``, of which
    ``speech`` are the non-silence ones."""
    if not speech:
        return []
    first, last = min(p.start for p in phones), max(p.end for p in phones)
    out = []
    if speech[0].start > first + TOUCH:
        out.append(Boundary(speech[0].start, None, 0))
    for j in range(len(speech) - 1):
        end, start = speech[j].end, speech[j + 1].start
        if start - end < TOUCH:
            out.append(Boundary(start, j, j + 1))
        else:
            out += [Boundary(end, j, None), Boundary(start, None, j + 1)]
    if speech[-1].end < last - TOUCH:
        out.append(Boundary(speech[-1].end, len(speech) - 1, None))
    return out


def match_phones(ref: Sequence[str], hyp: Sequence[str]) -> tuple[dict[int, int], int]:
    """Levenshtein alignment of two label sequences: reference index -> hypothesis index of
    each matched (same label) pair, and the number of edits."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for k in range(m + 1):
        cost[0][k] = k
    for i in range(1, n + 1):
        for k in range(1, m + 1):
            cost[i][k] = min(cost[i - 1][k - 1] + (ref[i - 1] != hyp[k - 1]), cost[i - 1][k] + 1, cost[i][k - 1] + 1)
    matches: dict[int, int] = {}
    i, k = n, m
    while i > 0 and k > 0:
        if cost[i][k] == cost[i - 1][k - 1] + (ref[i - 1] != hyp[k - 1]):
            if ref[i - 1] == hyp[k - 1]:
                matches[i - 1] = k - 1
            i, k = i - 1, k - 1
        elif cost[i][k] == cost[i - 1][k] + 1:
            i -= 1
        else:
            k -= 1
    return matches, cost[n][m]


@dataclass
class AlignmentScore:
    tolerance: float  # seconds
    errors: list[float] = field(default_factory=list)  # seconds, one per scored boundary
    signed: list[float] = field(default_factory=list)  # hypothesis - reference (s), the same boundaries
    reference_boundaries: int = 0  # of the utterances the hypothesis has
    utterances: int = 0  # scored: in both files
    missing: list[str] = field(default_factory=list)  # reference utterances the hypothesis lacks
    differing: list[str] = field(default_factory=list)  # utterances whose phone sequences differ
    phone_edits: int = 0
    reference_phones: int = 0

    def within(self) -> float:
        """% of scored boundaries within the tolerance."""
        return 100.0 * sum(e <= self.tolerance + _EPS for e in self.errors) / len(self.errors)

    def summary(self) -> str:
        head = (f"{len(self.errors)} of {self.reference_boundaries} boundaries scored in {self.utterances} "
                f"utterances ({len(self.missing)} missing from the hypothesis, {len(self.differing)} with other "
                f"phones: {self.phone_edits} edits in {self.reference_phones} phones)")
        if not self.errors:
            return head + ": no boundary to score"
        mean, median = 1000 * statistics.fmean(self.errors), 1000 * statistics.median(self.errors)
        return (f"{head}: {self.within():.1f} % within {self.tolerance * 1000:g} ms, "
                f"mean {mean:.1f} ms, median {median:.1f} ms, median signed {self.median_signed_ms():+.1f} ms")

    def median_signed_ms(self) -> float:
        return 1000 * statistics.median(self.signed)

    def row(self, name: str) -> str:
        """One markdown row under :func:`table_header`."""
        if not self.errors:
            return f"| {name} | {self.reference_boundaries} | 0 | - | - | - |"
        return (f"| {name} | {self.reference_boundaries} | {len(self.errors)} | {self.within():.1f} % | "
                f"{1000 * statistics.fmean(self.errors):.1f} ms | {self.median_signed_ms():+.1f} ms |")

    def as_dict(self) -> dict:
        figures = {}
        if self.errors:
            figures = {"within_tolerance_percent": round(self.within(), 2),
                       "mean_ms": round(1000 * statistics.fmean(self.errors), 2),
                       "median_ms": round(1000 * statistics.median(self.errors), 2),
                       "median_signed_ms": round(self.median_signed_ms(), 2)}
        return {"tolerance_ms": self.tolerance * 1000, "boundaries": len(self.errors),
                "reference_boundaries": self.reference_boundaries, **figures,
                "utterances": self.utterances, "missing_utterances": self.missing,
                "differing_utterances": self.differing, "phone_edits": self.phone_edits,
                "reference_phones": self.reference_phones}


class BoundaryMatch(NamedTuple):
    reference: float  # the reference boundary's time (s)
    hypothesis: float  # the time of the hypothesis edge it is scored against
    index: int  # that edge is the start of hyp[index] (silence included; len(hyp): the end)


def match_boundaries(ref: Sequence[Phone], hyp: Sequence[Phone]) -> tuple[list[BoundaryMatch], int, int]:
    """The scored boundaries of one utterance (see the module's doc), how many boundaries
    the reference has, and the phone edits between the two sequences."""
    ref_speech = [p for p in ref if p.label not in SILENCE]
    hyp_index = [k for k, p in enumerate(hyp) if p.label not in SILENCE]
    matches, edits = match_phones([p.label for p in ref_speech], [hyp[k].label for k in hyp_index])
    boundaries = reference_boundaries(ref, ref_speech)
    out = []
    for b in boundaries:
        sides = [j for j in (b.left, b.right) if j is not None]
        if any(j not in matches for j in sides):
            continue
        if b.left is not None and b.right is not None and matches[b.right] != matches[b.left] + 1:
            continue
        edges = []  # (time, index) of the hypothesis edges that stand for the boundary
        if b.left is not None:
            k = hyp_index[matches[b.left]]
            edges.append((hyp[k].end, k + 1))
        if b.right is not None:
            k = hyp_index[matches[b.right]]
            edges.append((hyp[k].start, k))
        time, index = max(edges, key=lambda edge: abs(edge[0] - b.time))
        out.append(BoundaryMatch(b.time, time, index))
    return out, len(boundaries), edits


def score_utterance(ref: Sequence[Phone], hyp: Sequence[Phone], score: AlignmentScore, utt: str) -> None:
    """Add one utterance's boundary errors and counts to ``score``."""
    matches, boundaries, edits = match_boundaries(ref, hyp)
    score.utterances += 1
    score.reference_boundaries += boundaries
    score.reference_phones += sum(p.label not in SILENCE for p in ref)
    score.phone_edits += edits
    if edits:
        score.differing.append(utt)
    for m in matches:
        score.errors.append(abs(m.hypothesis - m.reference))
        score.signed.append(m.hypothesis - m.reference)


def score_alignment(ref_ctm: str | Path, hyp_ctm: str | Path, tolerance: float = 0.02) -> AlignmentScore:
    """Boundary errors of ``hyp_ctm`` against ``ref_ctm`` (see the module's doc)."""
    if not tolerance > 0:
        raise SpeechError(f"--tolerance {tolerance}: must be > 0 seconds (e.g. 0.02)")
    ref, hyp = read_ctm(ref_ctm), read_ctm(hyp_ctm)
    if not ref:
        raise SpeechError(f"{ref_ctm}: no phones; give the reference phone CTM")
    score = AlignmentScore(tolerance)
    for utt in sorted(ref):
        if utt in hyp:
            score_utterance(ref[utt], hyp[utt], score, utt)
        else:
            score.missing.append(utt)
    if not score.utterances:
        raise SpeechError(f"{hyp_ctm}: none of the {len(ref)} utterances of {ref_ctm} (e.g. '{min(ref)}'); "
                          "align the reference's data directory")
    return score


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="speech score-alignment",
        description="Phone boundary errors of a hypothesis phone CTM against a reference one: boundaries scored, "
                    "%% within the tolerance, mean and median absolute error (see speech/alignment_score.py).")
    p.add_argument("ref_ctm", type=Path, help="reference phone CTM, e.g. data/align_ref/phones.ctm")
    p.add_argument("hyp_ctm", type=Path, help="the aligner's phone CTM")
    p.add_argument("--tolerance", type=float, default=0.02, help="seconds (default 0.02)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--row", metavar="NAME",
                   help="print a markdown table row named NAME on stdout (the summary goes to stderr)")
    p.add_argument("--header", action="store_true", help="with --row: print the table's header first")
    args = p.parse_args(argv)
    score = score_alignment(args.ref_ctm, args.hyp_ctm, args.tolerance)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(score.as_dict(), f, indent=2)
            f.write("\n")
    if args.row is None:
        print(f"{args.hyp_ctm}: {score.summary()}")
        return 0
    print(f"{args.hyp_ctm}: {score.summary()}", file=sys.stderr)
    if args.header:
        print(table_header(args.tolerance))
    print(score.row(args.row))
    return 0
