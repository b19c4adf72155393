"""How well an acoustic model predicts durations: ``speech evaluate-durations MODEL_DIR DATA_DIR``.

The model's duration predictor is run on the aligned tokens of DATA_DIR (``speech
tts-durations``: the phones and pauses the speaker actually made) and its frames compared
with the aligned ones. Printed, and written to MODEL_DIR/durations_<data name>.json:

- phones: mean absolute error in milliseconds per phone, and the Pearson correlation of
  predicted and aligned frames (FastSpeech-style duration accuracy);
- pauses: the same for pause tokens (the edges' silence, punctuation, unpunctuated SIL);
- utterance length: the mean ratio of predicted to aligned total frames (speaking rate).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.model_dir import load_model
from speech.tts.frontend import token_ids
from speech.tts.mel import MEL_CONFIG, check_same, load_mel_config
from speech.tts.tts_dir import KIND
from speech.tts.tts_durations import read_durations


def _stats(pred: np.ndarray, ref: np.ndarray, ms_per_frame: float) -> dict[str, float]:
    if pred.size == 0:
        return {"tokens": 0}
    corr = float(np.corrcoef(pred, ref)[0, 1]) if pred.size > 1 and pred.std() > 0 and ref.std() > 0 else float("nan")
    return {"tokens": int(pred.size), "mae_ms": round(float(np.abs(pred - ref).mean()) * ms_per_frame, 2),
            "correlation": round(corr, 4)}


def evaluate_durations(model_dir: Path, data_dir: Path) -> dict:
    """The figures of the module docstring, for every utterance of DATA_DIR with durations."""
    _, model = load_model(model_dir, KIND)
    mel = load_mel_config(model_dir / MEL_CONFIG)
    if (data_dir / MEL_CONFIG).is_file():
        check_same(load_mel_config(data_dir / MEL_CONFIG), mel, f"{data_dir}/durations", str(model_dir))
    ms_per_frame = 1000 * mel.hop_length / mel.sample_rate
    pred_phone, ref_phone, pred_pause, ref_pause, ratios = [], [], [], [], []
    for utt, (toks, frames) in sorted(read_durations(data_dir).items()):
        ids = [torch.tensor([x]) for x in token_ids(toks)]
        _, predicted, _ = model.infer(*ids, torch.tensor([len(toks)]))
        pred = predicted[0].numpy()
        ref = np.asarray(frames)
        pause = np.array([t.position == 0 for t in toks])
        pred_phone.append(pred[~pause]), ref_phone.append(ref[~pause])
        pred_pause.append(pred[pause]), ref_pause.append(ref[pause])
        ratios.append(pred.sum() / max(ref.sum(), 1))
    if not ratios:
        raise SpeechError(f"{data_dir}: no utterance with durations")
    return {"data": str(data_dir), "utterances": len(ratios), "ms_per_frame": ms_per_frame,
            "phones": _stats(np.concatenate(pred_phone), np.concatenate(ref_phone), ms_per_frame),
            "pauses": _stats(np.concatenate(pred_pause), np.concatenate(ref_pause), ms_per_frame),
            "length_ratio": round(float(np.mean(ratios)), 4)}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="speech evaluate-durations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="TTS model dir (speech train-tts)")
    p.add_argument("data_dir", type=Path, help="data dir with tokens and durations (speech tts-durations)")
    args = p.parse_args(argv)
    result = evaluate_durations(args.model_dir, args.data_dir)
    with atomic_write(args.model_dir / f"durations_{args.data_dir.name}.json") as f:
        json.dump(result, f, indent=1)
    ph, pa = result["phones"], result["pauses"]
    print(f"{args.data_dir} ({result['utterances']} utterances): phones {ph['tokens']}, mean absolute error "
          f"{ph.get('mae_ms', 'n/a')} ms, correlation {ph.get('correlation', 'n/a')}; pauses {pa['tokens']}, "
          f"{pa.get('mae_ms', 'n/a')} ms, correlation {pa.get('correlation', 'n/a')}; predicted/aligned length "
          f"{result['length_ratio']}")
    return 0
