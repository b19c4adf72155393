"""Boundary offsets: an aligner's bias at each kind of phone boundary, learnt from speech
whose boundaries are known and taken off its later alignments.

``speech fit-boundary-offsets REF_CTM HYP_CTM OUT.yaml`` compares an aligner's phone CTM
with a reference's (the boundaries :mod:`speech.alignment_score` scores) and writes, for each
pair of manner classes either side of a boundary (:data:`speech.text.phone_classes.MANNER`
and ``silence``: ``stop-vowel``, ``silence-stop``, ...), the median of hypothesis minus
reference time; pairs seen fewer than ``--min-count`` times get the median over all
boundaries. ``speech align-hmm --boundary-offsets OUT.yaml`` moves each boundary it finds by
minus its pair's offset.

Why: an HMM aligner's errors at a boundary are far from centred, and differ by the kind of
boundary. Frames are assigned by which state explains them best, so where one phone glides
into the next (an approximant or a nasal into a vowel), the boundary lands late; where a
reference counts a stop's silent closure as part of the stop, the aligner, which sees
silence, puts the stop's start at the burst (festival kal, a diphone voice: approximant-vowel
+15 ms, nasal-vowel +15 ms, silence-stop +39 ms at the median). Boundary-specific corrections
of this kind (Toledano et al., IEEE Trans. Speech Audio Process. 2003; Kominek et al. 2003 for
unit-selection voices) learn them from speech with known boundaries. They learn the
*reference's* convention as well as the aligner's bias: offsets fitted on one voice move the
boundaries of voices labelled the same way towards their references, and may move those of
a voice labelled otherwise away from its own.

The YAML holds ``default`` (seconds), ``min_count``, and ``pairs``: ``LEFT-RIGHT: {offset: s,
count: n}`` for every pair that was seen, the ones under ``min_count`` included for the
record (they are given ``default``).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from speech.alignment import TimeSpan
from speech.alignment_score import SILENCE, match_boundaries, normalize_label, read_ctm
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.text.phone_classes import MANNER

SILENCE_CLASS = "silence"
_CLASS_OF = {phone: name for name, phones in MANNER.items() for phone in phones.split()}


def phone_class(label: str) -> str:
    """The manner class of a phone label (``ah0_B`` is a vowel; silence is ``silence``); a
    label outside CMUdict's phones is a class of its own."""
    phone = normalize_label(label)
    return SILENCE_CLASS if phone in SILENCE else _CLASS_OF.get(phone, phone)


def pair_of(left: str, right: str) -> str:
    """The key of the boundary between phone labels ``left`` and ``right``."""
    return f"{phone_class(left)}-{phone_class(right)}"


@dataclass(frozen=True)
class BoundaryOffsets:
    default: float  # seconds: the offset of a pair not in ``offsets``
    offsets: dict[str, float]  # pair -> seconds (hypothesis minus reference), pairs seen min_count times
    counts: dict[str, int]  # pair -> boundaries it was fitted on, every pair seen
    min_count: int

    def offset(self, left: str, right: str) -> float:
        return self.offsets.get(pair_of(left, right), self.default)

    def correct(self, spans: Sequence[TimeSpan], min_duration: float) -> list[TimeSpan]:
        """``spans`` (one utterance's phones, touching, in time order) with each boundary
        between two of them moved by minus its offset; the utterance's start and end stay, and
        no phone is left shorter than ``min_duration`` (an aligner's frame: the boundary stops
        there, as the aligner itself could not have put it closer)."""
        edges = [s.start for s in spans] + [spans[-1].end] if spans else []
        moved = list(edges)
        for k in range(1, len(spans)):
            moved[k] = edges[k] - self.offset(spans[k - 1].label, spans[k].label)
        for k in range(1, len(spans)):
            moved[k] = max(moved[k], moved[k - 1] + min_duration)
        for k in range(len(spans) - 1, 0, -1):
            moved[k] = min(moved[k], moved[k + 1] - min_duration)
        return [TimeSpan(s.label, moved[k], moved[k + 1], s.confidence) for k, s in enumerate(spans)]

    def save(self, path: Path) -> None:
        pairs = {pair: ({"offset": round(self.offsets[pair], 4)} if pair in self.offsets else {}) | {"count": n}
                 for pair, n in sorted(self.counts.items(), key=lambda kv: -kv[1])}
        with atomic_write(path) as f:
            f.write("# speech fit-boundary-offsets: hypothesis minus reference time (s) of each kind of phone boundary;\n"
                    "# speech align-hmm --boundary-offsets moves its boundaries by minus these\n")
            yaml.safe_dump({"default": round(self.default, 4), "min_count": self.min_count, "pairs": pairs}, f,
                           sort_keys=False)

    @classmethod
    def load(cls, path: Path) -> "BoundaryOffsets":
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpeechError(f"{path}: no such file; write it with speech fit-boundary-offsets") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise SpeechError(f"{path}: cannot be read as YAML ({e}); write it with speech fit-boundary-offsets") from None
        try:
            pairs = data["pairs"]
            return cls(default=float(data["default"]),
                       offsets={p: float(v["offset"]) for p, v in pairs.items() if "offset" in v},
                       counts={p: int(v["count"]) for p, v in pairs.items()}, min_count=int(data["min_count"]))
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise SpeechError(f"{path}: not a boundary offsets file ({type(e).__name__}: {e}); write it with "
                              "speech fit-boundary-offsets") from None


def fit_offsets(ref_ctm: Path, hyp_ctm: Path, min_count: int = 10) -> BoundaryOffsets:
    """The offsets of ``hyp_ctm``'s boundaries against ``ref_ctm``'s (see the module's doc)."""
    if min_count < 1:
        raise SpeechError(f"--min-count {min_count}: give at least 1 boundary")
    ref, hyp = read_ctm(ref_ctm), read_ctm(hyp_ctm)
    errors: dict[str, list[float]] = {}
    for utt in sorted(set(ref) & set(hyp)):
        phones = hyp[utt]
        for m in match_boundaries(ref[utt], phones)[0]:
            if 0 < m.index < len(phones):  # an utterance's start or end is not a boundary it moves
                errors.setdefault(pair_of(phones[m.index - 1].label, phones[m.index].label), []).append(
                    m.hypothesis - m.reference)
    if not errors:
        raise SpeechError(f"{hyp_ctm}: no boundary matches one of {ref_ctm}; give the aligner's CTM of the "
                          "reference's utterances")
    every = [e for v in errors.values() for e in v]
    return BoundaryOffsets(default=statistics.median(every),
                           offsets={p: statistics.median(v) for p, v in errors.items() if len(v) >= min_count},
                           counts={p: len(v) for p, v in errors.items()}, min_count=min_count)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech fit-boundary-offsets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref_ctm", type=Path, help="reference phone CTM, e.g. data/align_fit/phones.ctm")
    p.add_argument("hyp_ctm", type=Path, help="the aligner's phone CTM of the same utterances")
    p.add_argument("out", type=Path, help="offsets YAML to write, e.g. exp/tri/boundary_offsets.yaml")
    p.add_argument("--min-count", type=int, default=10,
                   help="boundaries a pair needs for an offset of its own (default 10; fewer: the overall median)")
    args = p.parse_args(argv)
    offsets = fit_offsets(args.ref_ctm, args.hyp_ctm, args.min_count)
    offsets.save(args.out)
    n = sum(offsets.counts.values())
    print(f"{args.out}: offsets of {len(offsets.offsets)} boundary pairs from {n} boundaries "
          f"(overall median {1000 * offsets.default:+.1f} ms; {len(offsets.counts) - len(offsets.offsets)} pairs "
          f"under {args.min_count} boundaries take it)")
    return 0
