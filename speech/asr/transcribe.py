"""Print the words spoken in audio files: ``speech transcribe --model DIR FILE...``.

Each argument is an audio file (any format soundfile reads, any rate or channel count), a
directory (searched recursively for audio files), or a Kaldi ``wav.scp`` (``*.scp``). Output
is one ``<id> <words>`` line per input, the id being the file's stem (or the scp key). A
file that cannot be read is reported on stderr and skipped; the exit code is then 1.
Decoding is greedy CTC, or with ``--lexicon`` a beam search over the lexicon's words
(``--lm`` adds an ARPA n-gram LM).

From Python::

    from speech.asr.transcribe import Transcriber
    text = Transcriber.from_dir("exp/blstm_ctc").transcribe("hello.wav")
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile
import torch

from speech.asr.lexicon_search import Search, make_search
from speech.asr.model_dir import LoadedModel, load_model_dir
from speech.audio import load_audio, load_wav_scp_entry
from speech.errors import SpeechError
from speech.fileio import read_key_value
from speech.train.device import resolve_device

AUDIO_EXTENSIONS = {"." + ext.lower() for ext in soundfile.available_formats()} | {".mp3", ".ogg", ".opus"}


class Transcriber:
    """Transcription with a trained model directory: greedy CTC, or a lexicon beam search."""

    def __init__(self, loaded: LoadedModel, device: torch.device, search: Search):
        self.loaded = loaded
        self.device = device
        self.search = search
        self.sample_rate = loaded.cfg.features.sample_rate

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "cpu", lexicon: str | Path | None = None,
                 beam_size: int = 20, lm: str | Path | None = None, lm_weight: float = 1.0,
                 word_score: float = 0.0) -> "Transcriber":
        dev = resolve_device(device)
        loaded = load_model_dir(model_dir, dev)
        return cls(loaded, dev, make_search(loaded.tokenizer, Path(model_dir), lexicon, beam_size, lm, lm_weight,
                                            word_score))

    def transcribe(self, audio: str | Path | np.ndarray) -> str:
        """One file path, or samples [N] float32 at the model's sample rate -> words."""
        samples = load_audio(audio, self.sample_rate) if isinstance(audio, (str, Path)) else audio
        return self.transcribe_batch([samples])[0]

    def transcribe_batch(self, waves: Sequence[np.ndarray]) -> list[str]:
        """Several waveforms [N_i] at the model's rate -> their words, decoded as one batch."""
        feats = [self.loaded.frontend(np.asarray(w, dtype=np.float32)) for w in waves]
        lengths = torch.tensor([f.shape[0] for f in feats])
        batch = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = torch.from_numpy(f)
        with torch.no_grad():
            log_probs, out_lengths = self.loaded.model(batch.to(self.device), lengths.to(self.device))
        return self.search(log_probs, out_lengths)


def expand_inputs(args: Sequence[str]) -> Iterator[tuple[str, str]]:
    """Command-line arguments -> (id, wav.scp-style value) pairs, in order."""
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
    p.add_argument("--batch-size", type=int, default=16, help="files decoded together")
    p.add_argument("--lexicon", type=Path, help="Kaldi lexicon (word + its tokens): beam search over its words")
    p.add_argument("--beam-size", type=int, default=20, help="beam of the lexicon search (default 20)")
    p.add_argument("--lm", type=Path, help="ARPA word LM for the lexicon search (speech train-lm)")
    p.add_argument("--lm-weight", type=float, default=1.0, help="LM weight (default 1.0)")
    p.add_argument("--word-score", type=float, default=0.0, help="score added per word (default 0)")
    args = p.parse_args(argv)

    transcriber = Transcriber.from_dir(args.model, args.device, args.lexicon, args.beam_size, args.lm,
                                       args.lm_weight, args.word_score)
    failed = 0
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        for (utt, _), words in zip(pending, transcriber.transcribe_batch([w for _, w in pending])):
            print(f"{utt} {words}".rstrip(), flush=True)
        pending.clear()

    for utt, value in expand_inputs(args.inputs):
        try:
            samples = load_wav_scp_entry(value, transcriber.sample_rate)
        except SpeechError as e:
            print(f"speech transcribe: skipping {utt}: {e}", file=sys.stderr)
            failed += 1
            continue
        pending.append((utt, samples))
        if len(pending) >= args.batch_size:
            flush()
    if pending:
        flush()
    if failed:
        print(f"speech transcribe: {failed} input(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
