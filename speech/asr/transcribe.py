"""Transcribe audio files: ``speech transcribe --model DIR INPUT...``.

Each input is an audio file (any format soundfile reads, any rate or channel count), a
directory (searched recursively for audio files), or a Kaldi ``wav.scp`` (``*.scp``). The
id of a recording is its file stem with whitespace made ``_`` (or its scp key), and two
recordings may not share one. Recordings longer than ``--max-segment`` seconds are read block
by block and cut at pauses by webrtcvad (``--vad-aggressiveness``), so an hour of audio
takes the memory of one segment; shorter
ones are decoded whole (``--vad on`` segments every file, ``--vad off`` none). Segments are
decoded in batches by the search the model dir records in MODEL/decoding.yaml (written by
``speech pick-decoding`` at the end of a recipe: the lexicon, LM and tuned weights, or the
graph, that gave the best dev WER), so the defaults decode as well as the recipe's best
system; ``--greedy`` decodes greedy CTC, and ``--lexicon`` (beam search over the lexicon's
words, ``--lm`` adding an ARPA n-gram LM) or ``--graph`` (the WFST search through
GRAPH/TLG.fst) replace the recorded search, as ``--beam-size``, ``--lm-weight`` and
``--word-score`` replace its values. Without decoding.yaml the default is greedy CTC. Word
times and confidences come from a CTC forced alignment of the result.

Output (``--format``): ``text`` (``<id> <words>``), ``json`` (one object per recording, with
segments and words), ``ctm`` (Kaldi, one word per line), ``srt`` or ``vtt`` subtitles; to
stdout, or with ``--output-dir`` one ``<id>.<ext>`` file per recording. A recording that
cannot be read is reported on stderr and skipped; the exit code is then 1.

From Python::

    from speech.asr.transcribe import Transcriber
    text = Transcriber.from_dir("exp/blstm_ctc").transcribe("hello.wav")
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from speech.alignment import TimeSpan
from speech.asr.align import align_words
from speech.asr.model_dir import LoadedModel, load_model_dir
from speech.asr.outputs import EXTENSIONS, FORMATS, TimedSegment, render
from speech.asr.search import DECODING, DecodingSetup, Search
from speech.audio import fill_digital_silence, load_audio, stream_wav_scp_entry
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write, read_key_value
from speech.vad import SpeechSpan, VadConfig, split_stream

AUDIO_EXTENSIONS = {"." + ext.lower() for ext in soundfile.available_formats()} | {".mp3", ".ogg", ".opus"}


class Transcriber:
    """Transcription with a trained model directory: greedy CTC, the lexicon beam search (with
    an LM) or the WFST search."""

    def __init__(self, loaded: LoadedModel, device: torch.device, search: Search):
        self.loaded = loaded
        self.device = device
        self.search = search
        self.sample_rate = loaded.cfg.features.sample_rate
        self.frame_seconds = loaded.cfg.features.frame_shift_ms / 1000 * loaded.cfg.model.subsample

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "cpu", lexicon: str | Path | None = None,
                 beam_size: int | None = None, lm: str | Path | None = None, lm_weight: float | None = None,
                 word_score: float | None = None, graph: str | Path | None = None,
                 greedy: bool = False) -> "Transcriber":
        """A transcriber for a model dir. Its search: greedy CTC with ``greedy``; else the
        one ``lexicon``/``lm``/``graph`` make; else the model dir's decoding.yaml (the search
        with the recipe's best dev WER, see ``speech pick-decoding``) when it has one; else
        greedy. ``beam_size``, ``lm_weight`` and ``word_score`` replace the chosen setup's."""
        model_dir = Path(model_dir)
        if greedy and (lexicon or lm or graph):
            raise SpeechError("--greedy decodes without a lexicon, LM or graph; leave out --lexicon, --lm and --graph")
        if greedy or lexicon or lm or graph:
            setup = DecodingSetup(lexicon=lexicon and Path(lexicon), lm=lm and Path(lm), graph=graph and Path(graph))
        elif (model_dir / DECODING).is_file():
            setup = DecodingSetup.load(model_dir / DECODING)
        else:
            setup = DecodingSetup()
        setup = setup.with_options(beam_size, lm_weight, word_score)
        dev = resolve_device(device)
        loaded = load_model_dir(model_dir, dev)
        return cls(loaded, dev, setup.make(loaded.tokenizer, model_dir))

    def transcribe(self, audio: str | Path | np.ndarray) -> str:
        """One file path, or samples [N] float32 at the model's sample rate -> words."""
        samples = load_audio(audio, self.sample_rate) if isinstance(audio, (str, Path)) else audio
        return self.transcribe_batch([fill_digital_silence(samples, self.sample_rate)])[0]

    def _outputs(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        feats = [self.loaded.frontend(np.asarray(w, dtype=np.float32)) for w in waves]
        lengths = torch.tensor([f.shape[0] for f in feats])
        batch = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = torch.from_numpy(f)
        with torch.no_grad():
            return self.loaded.model(batch.to(self.device), lengths.to(self.device))

    def transcribe_batch(self, waves: Sequence[np.ndarray]) -> list[str]:
        """Several waveforms [N_i] at the model's rate -> their words, decoded as one batch."""
        return self.search(*self._outputs(waves))

    def transcribe_timed(self, waves: Sequence[np.ndarray]) -> list[list[TimeSpan]]:
        """Several waveforms -> their words with times (seconds from each wave's start) and
        confidences, from a forced alignment of the decoded words."""
        log_probs, lengths = self._outputs(waves)
        out = []
        for i, text in enumerate(self.search(log_probs, lengths)):
            try:
                out.append(align_words(log_probs[i, : lengths[i]], self.loaded.tokenizer, text, self.frame_seconds))
            except SpeechError:  # cannot happen for a CTC path; keep the words without times
                out.append([TimeSpan(w, 0.0, len(waves[i]) / self.sample_rate, 0.0) for w in text.split()])
        return out

    def transcribe_segments(self, segments: Iterable[SpeechSpan], batch_size: int = 16) -> Iterator[TimedSegment]:
        """Decode a recording's segments in batches; word times relative to the recording."""
        pending: list[SpeechSpan] = []

        def flush() -> Iterator[TimedSegment]:
            for seg, words in zip(pending, self.transcribe_timed([s.samples for s in pending])):
                shifted = [TimeSpan(w.label, seg.start + w.start, seg.start + w.end, w.confidence) for w in words]
                yield TimedSegment(seg.start, seg.start + len(seg.samples) / self.sample_rate, shifted)
            pending.clear()

        for seg in segments:
            if len(seg.samples) >= self.sample_rate // 10:  # shorter than one feature window or so: nothing to say
                pending.append(seg)
            if len(pending) >= batch_size:
                yield from flush()
        if pending:
            yield from flush()


def segments_of(chunks: Iterable[np.ndarray], mode: str, cfg: VadConfig, sample_rate: int) -> Iterator[SpeechSpan]:
    """``mode`` off: the whole recording; on: VAD segments; auto: whole when it is no longer
    than ``cfg.max_segment_s``, else VAD segments."""
    chunks = (fill_digital_silence(c, sample_rate) for c in chunks)
    if mode == "on":
        yield from split_stream(chunks, cfg, sample_rate)
        return
    head: list[np.ndarray] = []
    length = 0
    limit = int(cfg.max_segment_s * sample_rate)
    for chunk in chunks:
        head.append(chunk)
        length += len(chunk)
        if mode == "auto" and length > limit:
            yield from split_stream(_chain(head, chunks), cfg, sample_rate)
            return
    if length:
        yield SpeechSpan(0.0, np.concatenate(head))


def _chain(head: list[np.ndarray], rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield from head
    yield from rest


def expand_inputs(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    """Command-line arguments -> (id, wav.scp-style value) pairs, in order. A file's id is
    its stem with whitespace made ``_``, since ids are the first field of text and CTM
    lines; two different recordings with the same id are an error, as one would overwrite
    the other's output (the same recording given twice is transcribed twice)."""
    seen: dict[str, str] = {}
    for utt, value in _inputs(args):
        utt = "_".join(utt.split())
        if seen.get(utt, value) != value:
            raise SpeechError(f"{value}: its id '{utt}' is also that of {seen[utt]}, and one output would replace "
                              f"the other; rename one, or list them in a wav.scp with unique ids")
        seen[utt] = value
        yield utt, value


def _inputs(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    for arg in args:
        path = Path(arg)
        if path.suffix == ".scp":
            yield from read_key_value(path).items()
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not found:
                raise SpeechError(f"{path}: directory holds no audio files")
            yield from ((p.stem, str(p)) for p in found)
        else:
            yield path.stem, str(path)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech transcribe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="audio files, directories, or wav.scp files")
    p.add_argument("--model", type=Path, required=True, help="trained model directory (speech train-asr)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--format", default="text", choices=FORMATS, help="output format (default text)")
    p.add_argument("--output-dir", type=Path, help="write <id>.<ext> per recording here instead of stdout")
    p.add_argument("--batch-size", type=int, default=16, help="segments decoded together (default 16)")
    p.add_argument("--vad", default="auto", choices=("auto", "on", "off"),
                   help="cut recordings at pauses: auto (those longer than --max-segment), on, off")
    p.add_argument("--vad-aggressiveness", type=int, default=2, choices=(0, 1, 2, 3), help="webrtcvad mode")
    p.add_argument("--max-segment", type=float, default=20.0, help="longest segment in seconds (default 20)")
    p.add_argument("--greedy", action="store_true", help="greedy CTC, whatever MODEL/decoding.yaml says")
    p.add_argument("--lexicon", type=Path, help="Kaldi lexicon (word + its tokens): beam search over its words")
    p.add_argument("--beam-size", type=int, help="beam of the lexicon search (default: decoding.yaml's, or 20)")
    p.add_argument("--lm", type=Path, help="ARPA word LM for the lexicon search (speech train-lm)")
    p.add_argument("--lm-weight", type=float, help="LM weight (default: decoding.yaml's, or 1.0)")
    p.add_argument("--word-score", type=float, help="score added per word (default: decoding.yaml's, or 0)")
    p.add_argument("--graph", type=Path, help="WFST search through GRAPH/TLG.fst (speech make-graph)")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        raise SpeechError(f"--batch-size {args.batch_size}: give 1 or more segments")
    if not args.max_segment >= 1.0:  # also refuses nan
        raise SpeechError(f"--max-segment {args.max_segment}: give at least 1 second")
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        raise SpeechError(f"--output-dir {args.output_dir}: exists and is not a directory; give a directory")
    # every input's id is known (and unique) before the model loads or anything is written
    inputs = list(expand_inputs(args.inputs))

    transcriber = Transcriber.from_dir(args.model, args.device, args.lexicon, args.beam_size, args.lm,
                                       args.lm_weight, args.word_score, args.graph, args.greedy)
    vad = VadConfig(aggressiveness=args.vad_aggressiveness, max_segment_s=args.max_segment)
    failed = 0
    if args.format == "vtt" and not args.output_dir:
        print("WEBVTT\n")
    for utt, value in tqdm(inputs, desc="transcribe", unit="file", disable=None if len(inputs) > 1 else True,
                           file=sys.stderr):
        try:
            chunks = stream_wav_scp_entry(value, transcriber.sample_rate)
            segments = list(transcriber.transcribe_segments(
                segments_of(chunks, args.vad, vad, transcriber.sample_rate), args.batch_size))
        except SpeechError as e:
            print(f"speech transcribe: skipping {utt}: {e}", file=sys.stderr)
            failed += 1
            continue
        out = render(args.format, utt, segments)
        if args.output_dir:
            with atomic_write(args.output_dir / f"{utt}.{EXTENSIONS[args.format]}") as f:
                f.write(out)
        else:
            # several recordings' cues go one after another under the single header printed above
            sys.stdout.write(out.removeprefix("WEBVTT\n\n") if args.format == "vtt" else out)
            sys.stdout.flush()
    if failed:
        print(f"speech transcribe: {failed} input(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
