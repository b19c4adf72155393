"""One contract for every trained model: a directory that loads on its own.

    config.yaml        ``kind:`` at the top (asr, vocoder, hmm; tts as it comes), then the
                       kind's full resolved config (a dataclass)
    model.safetensors  the weights (safetensors: loading runs no code, unlike a pickle)
    ...                what the kind needs to run, beside them (tokens, CMVN statistics,
                       feature config, decoding setup: see the kind's own module)

:data:`KINDS` maps each kind to its config dataclass, the function that builds its network
from that config, and the command that makes such a dir (named in errors), as ESPnet maps a
YAML key to a class. A command handed a dir of another kind, a config.yaml without a kind,
or weights that cannot be read says so in one line. Configs and weights are written
atomically (:mod:`speech.fileio`).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speech.config import config_from_dict, read_mapping, save_config
from speech.errors import SpeechError
from speech.fileio import atomic_path

if TYPE_CHECKING:  # torch only for annotations: make-results reads kinds without importing it
    import torch

CONFIG, WEIGHTS = "config.yaml", "model.safetensors"


@dataclass(frozen=True)
class ModelKind:
    config: str  # "module:Class", the dataclass of config.yaml (imported when needed)
    build: str  # "module:function", config -> torch.nn.Module with fresh weights
    made_by: str  # the command that makes such a model dir


KINDS: dict[str, ModelKind] = {
    "asr": ModelKind("speech.asr.model_dir:AsrConfig", "speech.asr.model_dir:build_model", "speech train-asr"),
    "vocoder": ModelKind("speech.tts.vocoder_dir:VocoderConfig", "speech.tts.vocoder_dir:build_model",
                         "speech train-vocoder"),
    "tts": ModelKind("speech.tts.tts_dir:TtsConfig", "speech.tts.tts_dir:build_model", "speech train-tts"),
    "hmm": ModelKind("speech.hmm.model:HmmConfig", "speech.hmm.model:build_model", "speech train-mono or train-tri"),
}


def _resolve(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def save_model_config(model_dir: str | Path, kind: str, cfg: Any) -> None:
    """MODEL_DIR/config.yaml: ``kind: <kind>`` and the resolved ``cfg``."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind '{kind}'")
    save_config({"kind": kind, **dataclasses.asdict(cfg)}, Path(model_dir) / CONFIG)


def read_kind(model_dir: str | Path) -> tuple[str, dict]:
    """(kind, the rest of config.yaml) of a model dir; SpeechError when it is not one."""
    path = Path(model_dir) / CONFIG
    made_by = " or ".join(k.made_by for k in KINDS.values())
    if not path.is_file():
        raise SpeechError(f"{model_dir}: not a trained model directory ({CONFIG} missing); make one with {made_by}")
    data = read_mapping(path, "model config", f"it is written by {made_by}")
    kind = data.pop("kind", None)
    if kind is None:
        raise SpeechError(f"{path}: no 'kind:' line, so this is not a model config of this version; if it is an "
                          f"ASR model made by an older speech train-asr, add the line 'kind: asr' at its top")
    if kind not in KINDS:
        raise SpeechError(f"{path}: kind '{kind}' is not one of {', '.join(KINDS)}")
    return kind, data


def load_model_config(model_dir: str | Path, kind: str) -> Any:
    """The config dataclass of a model dir that must be of ``kind``."""
    found, data = read_kind(model_dir)
    if found != kind:
        raise SpeechError(f"{model_dir}: a model of kind '{found}' (made by {KINDS[found].made_by}), but this "
                          f"command needs kind '{kind}': give a model dir made by {KINDS[kind].made_by}")
    return config_from_dict(_resolve(KINDS[kind].config), data, Path(model_dir) / CONFIG)


def build_model(kind: str, cfg: Any) -> torch.nn.Module:
    """The network of a model of ``kind`` for ``cfg``, with fresh weights."""
    return _resolve(KINDS[kind].build)(cfg)


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the weights as safetensors, atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model``; a missing, truncated or foreign file, or
    weights of other shapes than the config gives, is a one-line SpeechError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise SpeechError(f"{path}: no weights; the model dir is incomplete (train it again)")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:  # truncated, random bytes, not safetensors
        raise SpeechError(f"{path}: cannot read the weights ({' '.join(str(e).split())}); the file is damaged or "
                          "not safetensors: copy it again or retrain") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise SpeechError(f"{path}: the weights do not match {path.parent / CONFIG} "
                          f"({' '.join(str(e).split())[:300]})") from None


def load_model(model_dir: str | Path, kind: str) -> tuple[Any, torch.nn.Module]:
    """(config, network with the dir's weights, in eval mode on the CPU) of a model dir of
    ``kind``."""
    model_dir = Path(model_dir)
    cfg = load_model_config(model_dir, kind)
    model = build_model(kind, cfg)
    load_weights(model, model_dir / WEIGHTS)
    return cfg, model.eval()
