"""Choosing the torch device and CPU threads from the command line."""

from __future__ import annotations

import torch

from speech.errors import SpeechError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda``/``cuda:N``/``cpu`` as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpeechError(f"--device '{name}' is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpeechError(f"--device {name}: no CUDA GPU is visible here; use --device cpu")
    return device
