"""What the TTS acoustic model trains on: ``speech tts-durations ALIGN_DIR DATA_DIR``.

For every utterance of DATA_DIR (a TTS corpus with mels: ``speech compute-mel``) that
``speech align-hmm`` aligned into ALIGN_DIR (phones.ctm, words.ctm, loglik), the text the
speaker read (DATA_DIR/spoken, with its punctuation; else DATA_DIR/text) goes through the
frontend (:mod:`speech.tts.frontend`) and each of its tokens gets its length in mel frames:

- a word's phones are the aligned ones (the pronunciation the aligner chose, with the stress
  of the CMUdict pronunciation that spells it), each the frames of its aligned span;
- a pause of the frontend (a comma, a full stop...) gets the silence the aligner found after
  its word, or no frame when the speaker did not pause there; a silence the aligner found
  where the text has no punctuation becomes a ``SIL`` token, as FastSpeech 2 recipes keep
  the Montreal aligner's ``sp``, so that no phone swallows a pause;
- the utterance's edges are ``SIL`` tokens holding the leading and trailing silence.

Times become mel frames by rounding each boundary to the nearest frame (every aligned span
at least one frame); the last token ends at the utterance's last mel frame, so the
durations of an utterance sum to its number of mel frames (DATA_DIR/utt2num_frames), as the
length regulator needs.

Writes DATA_DIR/tokens (``<utt> SIL DH_B AH0_E K_B AE1_I T_E . SIL``: each phone with its
stress digit and Kaldi's word-position suffix _B _I _E _S, pauses bare) and
DATA_DIR/durations (``<utt> 12 5 3 ...``), and DATA_DIR/durations_dropped
(``<utt> <reason>``) for what was left out: not aligned, its per-frame log-likelihood a low
outlier (``--max-deviations`` robust standard deviations under the median; a wrong
transcript or broken audio), or its words not the frontend's. Atomic, and skipped when
newer than its inputs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from collections import Counter
from pathlib import Path
from typing import Sequence

from speech.alignment_score import Phone, read_ctm
from speech.data.datadir import MEL_CONFIG, SPOKEN
from speech.errors import SpeechError
from speech.logs import setup_logging
from speech.fileio import read_key_value, write_key_value
from speech.hmm.align_hmm import frame_edges
from speech.hmm.topology import SILENCE
from speech.stage import skip
from speech.tts import frontend
from speech.tts.frontend import PAUSES, Pause, Token, Word
from speech.tts.mel import load_mel_config

log = logging.getLogger("speech.tts_durations")

TOKENS, DURATIONS, DROPPED = "tokens", "durations", "durations_dropped"
# Token.position <-> Kaldi's word-position-dependent phone suffix
_SUFFIX = {1: "_B", 2: "_I", 3: "_E", 4: "_S"}
_POSITION = {s: p for p, s in _SUFFIX.items()}
# 1.4826 * MAD estimates a standard deviation from the median absolute deviation
_MAD_TO_STD = 1.4826


class Dropped(Exception):
    """An utterance that cannot give training durations; the message says why."""


def token_text(toks: Sequence[Token]) -> str:
    """Tokens as one line: ``SIL DH_B AH0_E ,`` (stress digit on vowels, position suffix)."""
    out = []
    for t in toks:
        if t.position == 0:
            out.append(t.phone)
        else:
            out.append(t.phone + (str(t.stress - 1) if t.stress else "") + _SUFFIX[t.position])
    return " ".join(out)


def parse_token_text(line: str, where: str) -> list[Token]:
    """The inverse of :func:`token_text`; SpeechError naming ``where`` for a token it did not write."""
    toks = []
    for text in line.split():
        if text in PAUSES:
            toks.append(Token(text, 0, 0))
            continue
        phone, _, suffix = text.rpartition("_")
        stress = 0
        if phone[-1:].isdigit():
            phone, stress = phone[:-1], int(phone[-1]) + 1
        if f"_{suffix}" not in _POSITION or phone not in frontend.TOKEN_SYMBOLS or stress > 3:
            raise SpeechError(f"{where}: '{text}' is not a token (a phone with stress digit and _B/_I/_E/_S, or one "
                              f"of {' '.join(PAUSES)}); write the file with speech tts-durations")
        toks.append(Token(phone, stress, _POSITION[f"_{suffix}"]))
    return toks


def _pronunciation(word: Word, aligned: list[str]) -> tuple[str, ...]:
    """The aligned phones with the stress of the CMUdict pronunciation that spells them
    (stressless when none does: the aligner's lexicon had another)."""
    for pron in word.pronunciations:
        if [p.rstrip("012") for p in pron] == aligned:
            return pron
    return tuple(aligned)


def utterance_durations(items: Sequence[Word | Pause], phones: Sequence[Phone], words: Sequence[Phone],
                        num_frames: int, frame_seconds: float) -> tuple[list[Token], list[int]]:
    """(tokens, mel frames of each) of one utterance: ``items`` from the frontend, ``phones``
    and ``words`` its aligned spans (SIL among the phones), ``num_frames`` its mel frames of
    ``frame_seconds``. Raises Dropped when the frontend's words are not the aligned ones."""
    said = [it for it in items if isinstance(it, Word)]
    if [w.text.upper() for w in said] != [w.label.upper() for w in words]:
        raise Dropped("frontend-words-differ")
    # each aligned phone to its word (by its midpoint) or to the silence gap before word k
    # (gap len(words): the trailing one)
    word_phones: list[list[Phone]] = [[] for _ in words]
    gaps: list[Phone | None] = [None] * (len(words) + 1)
    k = 0
    for p in phones:
        mid = (p.start + p.end) / 2
        while k < len(words) and mid >= words[k].end:
            k += 1
        if p.label == SILENCE:
            gaps[k] = p if gaps[k] is None else Phone(SILENCE, gaps[k].start, p.end)
        elif k < len(words) and mid >= words[k].start:
            word_phones[k].append(p)
        else:
            raise Dropped("phone-outside-words")
    # the items again, with SIL where the speaker paused unpunctuated; spans[i]: the time
    # span of token i, None for a pause not made (0 frames)
    new_items: list[Word | Pause] = []
    chosen: list[tuple[str, ...]] = []
    spans: list[Phone | None] = [gaps[0]]
    following: list[list[Pause]] = [[] for _ in said]
    w = -1
    for it in items:
        if isinstance(it, Word):
            w += 1
        elif w >= 0:  # a mark before the first word is not read
            following[w].append(it)
    for k, word in enumerate(said):
        pron = _pronunciation(word, [p.label for p in word_phones[k]])
        new_items.append(word)
        chosen.append(pron)
        spans += word_phones[k]
        gap = gaps[k + 1] if k + 1 < len(said) else None  # the trailing silence is the last SIL's
        marks = following[k] or ([Pause("SIL")] if gap is not None else [])
        new_items += marks
        spans += [gap] + [None] * (len(marks) - 1) if marks else []
    spans.append(gaps[-1])
    picks = iter(chosen)
    toks = frontend.tokens(new_items, choose=lambda i, word: next(picks))
    if len(toks) != len(spans):
        raise SpeechError(f"internal: {len(toks)} tokens for {len(spans)} spans")  # the frontend changed its edges
    timed = [i for i, s in enumerate(spans) if s is not None]
    if len(timed) > num_frames:
        raise Dropped("fewer-frames-than-phones")
    edges = frame_edges([spans[i].start for i in timed], num_frames, frame_seconds)
    durations = [0] * len(toks)
    for i, a, b in zip(timed, edges, edges[1:]):
        durations[i] = b - a
    return toks, durations


def low_outliers(logliks: dict[str, float], max_deviations: float) -> set[str]:
    """Utterances whose per-frame log-likelihood lies more than ``max_deviations`` robust
    standard deviations (1.4826 MAD) under the median."""
    if len(logliks) < 3:
        return set()
    median = statistics.median(logliks.values())
    spread = _MAD_TO_STD * statistics.median(abs(v - median) for v in logliks.values())
    if spread == 0:
        return set()
    return {u for u, v in logliks.items() if v < median - max_deviations * spread}


def _read_logliks(path: Path) -> dict[str, float]:
    out = {}
    for utt, value in read_key_value(path).items():
        try:
            out[utt] = float(value.split()[0])
        except ValueError:
            raise SpeechError(f"{path}: '{utt} {value}' is not '<utt> <log-likelihood per frame> <frames>'; "
                              "run speech align-hmm again") from None
    return out


def tts_durations(align_dir: Path, data_dir: Path, max_deviations: float = 5.0, force: bool = False) -> bool:
    """Write DATA_DIR/tokens, durations and durations_dropped (module docstring); False when skipped."""
    for f, fix in ((align_dir / "phones.ctm", "run speech align-hmm"), (data_dir / MEL_CONFIG, "run speech compute-mel"),
                   (data_dir / "utt2num_frames", "run speech compute-mel")):
        if not f.is_file():
            raise SpeechError(f"{f}: no such file; {fix} first")
    text_file = data_dir / SPOKEN if (data_dir / SPOKEN).is_file() else data_dir / "text"
    inputs = [align_dir / "phones.ctm", align_dir / "words.ctm", align_dir / "loglik", text_file,
              data_dir / "utt2num_frames"]
    outputs = [data_dir / TOKENS, data_dir / DURATIONS, data_dir / DROPPED]
    if skip("tts-durations", f"{data_dir}/{TOKENS} is complete", outputs, inputs, force=force):
        return False
    mel = load_mel_config(data_dir / MEL_CONFIG)
    frame_seconds = mel.hop_length / mel.sample_rate
    texts = read_key_value(text_file)
    frames = {u: int(n) for u, n in read_key_value(data_dir / "utt2num_frames").items()}
    phones, words = read_ctm(align_dir / "phones.ctm"), read_ctm(align_dir / "words.ctm")
    logliks = _read_logliks(align_dir / "loglik")
    outliers = low_outliers(logliks, max_deviations)
    try:  # one festival process for every word CMUdict lacks
        analysed = dict(zip(texts, frontend.analyse_many(texts.values())))
    except SpeechError:  # a text the frontend cannot read: each on its own below, that one dropped
        analysed = {}
    tokens_out, durations_out, dropped = {}, {}, {}
    for utt, text in texts.items():
        try:
            if utt not in logliks or utt not in phones or utt not in frames:
                raise Dropped("not-aligned")
            if utt in outliers:
                raise Dropped(f"low-loglik({logliks[utt]:.2f})")
            items = analysed.get(utt) or frontend.analyse(text)
            toks, durs = utterance_durations(items, phones[utt], words.get(utt, []), frames[utt], frame_seconds)
        except Dropped as e:
            dropped[utt] = str(e)
            continue
        except SpeechError as e:  # the frontend could not read it
            dropped[utt] = f"frontend({e})"
            continue
        tokens_out[utt] = token_text(toks)
        durations_out[utt] = " ".join(map(str, durs))
    if not tokens_out:
        raise SpeechError(f"{data_dir}: no utterance got durations ({len(dropped)} dropped, see the reasons in "
                          f"{data_dir}/{DROPPED}); are {align_dir}'s alignments those of this data dir?")
    write_key_value(data_dir / DROPPED, dropped)
    write_key_value(data_dir / DURATIONS, durations_out)
    write_key_value(data_dir / TOKENS, tokens_out)
    reasons = Counter(why.split("(")[0] for why in dropped.values())
    print(f"tts-durations: {len(tokens_out)} of {len(texts)} utterances of {data_dir} have durations; dropped "
          f"{len(dropped)}" + (f" ({', '.join(f'{n} {why}' for why, n in sorted(reasons.items()))})" if dropped else ""))
    return True


def read_durations(data_dir: Path) -> dict[str, tuple[list[Token], list[int]]]:
    """utterance -> (tokens, frames of each) of DATA_DIR (what :func:`tts_durations` wrote);
    SpeechError naming the file for a line that does not pair up."""
    for name in (TOKENS, DURATIONS):
        if not (data_dir / name).is_file():
            raise SpeechError(f"{data_dir}/{name}: no such file; run speech tts-durations ALIGN_DIR {data_dir} first")
    toks = read_key_value(data_dir / TOKENS)
    durs = read_key_value(data_dir / DURATIONS)
    out = {}
    for utt, line in toks.items():
        where = f"{data_dir}/{TOKENS} ({utt})"
        parsed = parse_token_text(line, where)
        try:
            frames = [int(x) for x in durs.get(utt, "").split()]
        except ValueError:
            raise SpeechError(f"{data_dir}/{DURATIONS} ({utt}): not whole numbers of frames") from None
        if len(frames) != len(parsed) or any(f < 0 for f in frames):
            raise SpeechError(f"{data_dir}/{DURATIONS} ({utt}): {len(frames)} durations for {len(parsed)} tokens; "
                              f"run speech tts-durations again")
        out[utt] = (parsed, frames)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech tts-durations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("align_dir", type=Path, help="speech align-hmm's output for DATA_DIR")
    p.add_argument("data_dir", type=Path, help="TTS data dir with mels (speech compute-mel)")
    p.add_argument("--max-deviations", type=float, default=5.0,
                   help="drop utterances whose per-frame log-likelihood is this many robust standard deviations "
                        "under the median (default 5)")
    p.add_argument("--force", action="store_true", help="redo even when complete")
    args = p.parse_args(argv)
    setup_logging(None)  # warnings (dropped characters) to this run's stderr
    if args.max_deviations <= 0:
        raise SpeechError(f"--max-deviations {args.max_deviations}: give a positive number, e.g. 5")
    tts_durations(args.align_dir, args.data_dir, args.max_deviations, args.force)
    return 0
