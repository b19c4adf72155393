"""Festival speech with festival's own phone segments: a reference to score forced aligners.

festival knows where every phone of what it synthesises lies: the ``Segment`` relation of
the utterance holds each phone and its end time, and the waveform is built to those times
(diphone voices warp each unit onto the target segment durations; HTS voices generate frame
by frame from the durations they write back). :func:`synthesize` runs ONE festival process
for a batch of sentences, as :mod:`speech.data.synth_speakers` does, and keeps, for each,
the wav and its phone spans.

The wav is festival's own output, not trimmed or padded: unlike the corpus speakers, whose
edges are cut to 0.1-0.2 s, its samples stay where festival put them, so the segment times
need no offset. Like them it is 16 kHz mono 16-bit with a -75 dBFS noise floor (slt-hts, at
32 kHz, is resampled, which moves no time).

Phones are CMUdict's 39 (upper case, no stress) and ``SIL``: festival's ``pau`` becomes
``SIL`` (adjacent pauses merge into one), its reduced vowel ``ax`` becomes ``AH`` and ``axr``
``ER``, as CMUdict writes them. Its syllabic ``el``/``em``/``en`` become ``L``/``M``/``N``:
CMUdict writes ``AH L`` where festival has one segment, and splitting it would invent a
boundary festival never made; an aligner's extra ``AH`` there is left to the scorer's
sequence alignment. The kal and ked voices produce none of these three (measured on 300
Harvard sentences). A phone outside that mapping is an error, not a guess.

:func:`main` is ``speech make-align-ref``: N sentences by one or more festival voices into a
data directory with ``phones.ctm`` and ``words.ctm`` (festival's words, from their first phone's
start to their last's end: the reference of word aligners such as the CTC one) beside its tables.
"""

from __future__ import annotations

import argparse
import logging
import random
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import soundfile as sf
import soxr

from speech.alignment import TimeSpan, ctm_lines
from speech.data.datadir import DataDir
from speech.data.synth_corpus import allocate
from speech.data.synth_speakers import FESTIVAL_VOICES, SynthSpeaker, speaker_problem
from speech.errors import SpeechError
from speech.fileio import atomic_write, read_key_value
from speech.stage import skip
from speech.text.g2p import FESTIVAL_TO_CMU, cmu_phones
from speech.text.sentences import SOURCES, reads_unambiguously, sentence_pool

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SILENCE = "SIL"
CTM_NAME = "phones.ctm"
WORDS_CTM_NAME = "words.ctm"
# festival's times are continuous: a millisecond grid keeps rounding far below the 20 ms
# tolerance that aligners are judged by (the default two decimals would add up to 10 ms)
CTM_DECIMALS = 3
NOISE_FLOOR_DB = -75.0  # as synth_speakers.render: no frame of digital zeros
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
MAX_DIGITS = 7


class SegmentItem(NamedTuple):
    """One sentence to synthesise: what festival reads, and where its wav goes."""

    text: str
    wav: Path


class Reference(NamedTuple):
    """festival's own times of one utterance."""

    phones: list[TimeSpan]  # from 0 to the last segment's end, SIL included, touching
    words: list[TimeSpan]  # festival's words (lower case), from their first to their last phone


def festival_phone(name: str) -> str:
    """festival's phone name -> CMUdict's (``SIL`` for a pause); SpeechError when it has none."""
    if name == "pau":
        return SILENCE
    upper = name.upper()
    phone = FESTIVAL_TO_CMU.get(upper, upper)
    if phone not in cmu_phones():
        raise SpeechError(f"festival phone '{name}' has no CMUdict equivalent; add it to FESTIVAL_TO_CMU "
                          "in speech/text/g2p.py")
    return phone


def phone_spans(segments: Sequence[tuple[str, float]]) -> list[TimeSpan]:
    """(festival phone, end time) in order -> spans from 0 on, each starting where the one
    before ends; adjacent pauses merged. Times are rounded to the CTM's grid here, so that
    a span's written start plus duration is exactly the next one's start."""
    spans: list[TimeSpan] = []
    start = 0.0
    for name, end in segments:
        phone = festival_phone(name)
        end = round(end, CTM_DECIMALS)
        if end <= start:
            raise SpeechError(f"festival gave phone '{name}' no duration (ends at {end} s, after {start} s)")
        if phone == SILENCE and spans and spans[-1].label == SILENCE:
            spans[-1] = TimeSpan(SILENCE, spans[-1].start, end)
        else:
            spans.append(TimeSpan(phone, start, end))
        start = end
    return spans


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(voice_function: str, texts: Sequence[str], tmp: Path) -> str:
    lines = [f"({voice_function})"]
    for i, text in enumerate(texts):
        lines += [f"(set! u (utt.synth (Utterance Text {_scheme_string(' '.join(text.split()))})))",
                  f"(utt.save.wave u {_scheme_string(str(tmp / f'{i}.wav'))} 'riff)",
                  f"(set! fd (fopen {_scheme_string(str(tmp / f'{i}.seg'))} \"w\"))",
                  "(mapcar (lambda (s) (format fd \"%s %f\\n\" (item.name s) (item.feat s 'end)))"
                  " (utt.relation.items u 'Segment))",
                  "(fclose fd)",
                  # a word's span: from the end of the segment before its first to its last's end
                  f"(set! fd (fopen {_scheme_string(str(tmp / f'{i}.words'))} \"w\"))",
                  "(mapcar (lambda (w) (format fd \"%s %s %s\\n\" (item.name w)"
                  " (item.feat w \"R:SylStructure.daughter1.daughter1.R:Segment.p.end\")"
                  " (item.feat w \"R:SylStructure.daughtern.daughtern.end\"))) (utt.relation.items u 'Word))",
                  "(fclose fd)"]
    return "\n".join(lines) + "\n"


def _read_segments(path: Path) -> list[tuple[str, float]]:
    return [(name, float(end)) for name, end in (line.split() for line in path.read_text().splitlines())]


def _read_words(path: Path) -> list[TimeSpan]:
    """festival's ``name start end`` lines -> word spans on the CTM's grid; a word without
    segments (festival gives 0 for a missing feature) is left out."""
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, start, end = line.rsplit(maxsplit=2)
        start, end = round(float(start), CTM_DECIMALS), round(float(end), CTM_DECIMALS)
        if end > start:
            spans.append(TimeSpan(name.lower().replace(" ", "_"), start, end))
    return spans


def _write_wav(raw: Path, out: Path) -> float:
    """festival's wav -> ``out`` at 16 kHz, 16-bit, noise floor added; its duration (s)."""
    x, rate = sf.read(raw, dtype="float32", always_2d=True)
    y = x.mean(axis=1)  # [num_samples]
    if rate != SAMPLE_RATE:
        y = soxr.resample(y, rate, SAMPLE_RATE)
    rng = np.random.default_rng(zlib.crc32(out.name.encode("utf-8")))
    y = y + rng.normal(0.0, 10.0 ** (NOISE_FLOOR_DB / 20.0), size=len(y)).astype(np.float32)
    pcm = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    with atomic_write(out, "wb") as f:
        sf.write(f, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return len(pcm) / SAMPLE_RATE


def synthesize(voice: str, items: Sequence[SegmentItem]) -> list[Reference]:
    """Every item read by festival ``voice`` (kal, ked, slt-hts) in one process: its wav
    written to ``item.wav``, and its phone and word spans returned, in item order.

    Raises SpeechError naming the voice (and the text) when the voice is not installed or
    festival fails.
    """
    speaker = SynthSpeaker("festival", voice)
    problem = speaker_problem(speaker)
    if problem is not None:
        raise SpeechError(f"{speaker.id}: {problem}")
    for item in items:
        if not item.text.strip():
            raise SpeechError(f"{speaker.id}: empty text for {item.wav}")
    with tempfile.TemporaryDirectory(prefix="speech-festival-") as name:
        tmp = Path(name)
        script = tmp / "segments.scm"
        script.write_text(_script(FESTIVAL_VOICES[voice].function, [i.text for i in items], tmp), encoding="utf-8")
        proc = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True, check=False)
        # festival -b stops at the first error, so the first missing output is the failing item
        failed = next((i for i, _ in enumerate(items) if not (tmp / f"{i}.words").is_file()), None)
        if proc.returncode != 0 or failed is not None:
            text = items[-1 if failed is None else failed].text
            detail = (proc.stderr or proc.stdout).strip()[-500:]
            raise SpeechError(f"{speaker.id}: festival failed on text '{text}' (exit code {proc.returncode}): {detail}")
        out = []
        for i, item in enumerate(items):
            spans = phone_spans(_read_segments(tmp / f"{i}.seg"))
            duration = _write_wav(tmp / f"{i}.wav", item.wav)
            # festival's waveform ends 20-30 ms past its last segment for a diphone voice (its
            # final window) and exactly there for HTS: far past it, audio and times disagree
            if not spans or abs(spans[-1].end - duration) > 0.1:
                raise SpeechError(f"{speaker.id}: festival's segments end at {spans[-1].end if spans else 0} s but "
                                  f"its audio at {duration:.3f} s for text '{item.text}'; its times cannot be trusted")
            out.append(Reference(spans, _read_words(tmp / f"{i}.words")))
    return out


# ---------------------------------------------------------------------------------------
# speech make-align-ref


class RefUtterance(NamedTuple):
    utt_id: str
    voice: str
    text: str  # the transcript (speech.text.sentences.normalize)
    spoken: str  # what festival reads: the same words with the sentence's punctuation
    wav: Path


def choose_sentences(source: str, num: int, seed: int) -> list[tuple[str, str]]:
    """``num`` (transcript, spoken text) pairs: shuffled sentences of a
    speech.text.sentences source, or digit strings of 1-7 digits for ``digits``."""
    rng = random.Random(f"align-ref-{seed}-{source}")
    if source == "digits":
        strings = [" ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, MAX_DIGITS))) for _ in range(num)]
        return [(s, s) for s in strings]
    pool = sentence_pool([source])
    sentences = sorted(s for s in pool if reads_unambiguously(s))
    if len(sentences) < num:
        raise SpeechError(f"source '{source}' has {len(sentences)} usable sentences, fewer than --num-utts {num}")
    rng.shuffle(sentences)
    return [(s, pool[s].spoken) for s in sentences[:num]]


def plan(voices: Sequence[str], source: str, num_utts: int, seed: int, audio_dir: Path) -> list[RefUtterance]:
    """``num_utts`` utterances shared equally among ``voices``, each a different sentence."""
    sentences = iter(choose_sentences(source, num_utts, seed))
    utts = []
    for voice, count in zip(voices, allocate(num_utts, [1.0] * len(voices))):
        speaker = SynthSpeaker("festival", voice).id
        for i in range(count):
            text, spoken = next(sentences)
            utt_id = f"{speaker}_{i:04d}"
            utts.append(RefUtterance(utt_id, voice, text, spoken, audio_dir / speaker / f"{utt_id}.wav"))
    return utts


def make_reference(out_dir: Path, utts: Sequence[RefUtterance], force: bool = False) -> bool:
    """Synthesise ``utts`` into the data dir ``out_dir`` (wav.scp, text, utt2spk, spk2utt,
    utt2dur) with ``out_dir/words.ctm``, and write ``out_dir/phones.ctm`` last; False when it
    was already complete."""
    ctm = out_dir / CTM_NAME

    def same_plan() -> bool:
        return (read_key_value(out_dir / "text") == {u.utt_id: u.text for u in utts}
                and read_key_value(out_dir / "wav.scp") == {u.utt_id: str(u.wav) for u in utts}
                and all(u.wav.is_file() for u in utts))

    if skip("make-align-ref", f"{ctm} holds the reference of these {len(utts)} utterances",
            [out_dir / WORDS_CTM_NAME, ctm],
            [out_dir / "text", out_dir / "wav.scp"], same_plan, force):
        return False
    ctm.unlink(missing_ok=True)
    refs: dict[str, Reference] = {}
    for voice in dict.fromkeys(u.voice for u in utts):
        mine = [u for u in utts if u.voice == voice]
        logger.info("%s: synthesising %d utterances", voice, len(mine))
        refs.update(zip((u.utt_id for u in mine), synthesize(voice, [SegmentItem(u.spoken, u.wav) for u in mine])))
    d = DataDir(path=out_dir, wav_scp={u.utt_id: str(u.wav) for u in utts},
                utt2spk={u.utt_id: SynthSpeaker("festival", u.voice).id for u in utts},
                text={u.utt_id: u.text for u in utts},
                utt2dur={u.utt_id: sf.info(str(u.wav)).duration for u in utts})
    d.write()
    with atomic_write(out_dir / WORDS_CTM_NAME) as f:
        for utt in d.utterances():
            f.writelines(line + "\n" for line in ctm_lines(utt, refs[utt].words, CTM_DECIMALS))
    with atomic_write(ctm) as f:
        for utt in d.utterances():
            f.writelines(line + "\n" for line in ctm_lines(utt, refs[utt].phones, CTM_DECIMALS))
    return True


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="speech make-align-ref",
        description="Festival speech with festival's own phone and word times: a data directory, phones.ctm "
                    "(CMUdict phones, SIL) and words.ctm, that forced aligners are scored against "
                    "(speech score-alignment).")
    p.add_argument("out_dir", type=Path, help="data directory to write, e.g. data/align_ref")
    p.add_argument("--num-utts", type=int, default=120, help="utterances in all (default 120)")
    # slt-hts's energy rises 12-28 ms after its phones start (kal, ked: 2-15 ms), a smooth
    # onset that would count against the aligner; the diphone voices are the default
    p.add_argument("--voices", default="kal,ked",
                   help=f"comma-separated festival voices ({', '.join(FESTIVAL_VOICES)}); default kal,ked")
    p.add_argument("--source", default="harvard", choices=[*SOURCES, "digits"],
                   help="sentences of speech.text.sentences, or digit strings (default harvard)")
    p.add_argument("--audio-dir", type=Path, help="wav files go here (default OUT_DIR/wav)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="redo even if the reference is complete")
    args = p.parse_args(argv)
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    unknown = [v for v in voices if v not in FESTIVAL_VOICES]
    if not voices or unknown:
        raise SpeechError(f"--voices '{args.voices}': festival voices are {', '.join(FESTIVAL_VOICES)}")
    if args.num_utts < len(voices):
        raise SpeechError(f"--num-utts {args.num_utts}: give every voice at least one utterance")
    audio_dir = (args.audio_dir or args.out_dir / "wav").resolve()
    utts = plan(voices, args.source, args.num_utts, args.seed, audio_dir)
    if make_reference(args.out_dir, utts, args.force):
        phones = (args.out_dir / CTM_NAME).read_text(encoding="utf-8").count("\n")
        print(f"{args.out_dir}: {len(utts)} utterances by {', '.join(voices)}, {phones} phone spans "
              f"-> {args.out_dir / CTM_NAME}")
    return 0
