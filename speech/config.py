"""Typed configs: YAML file + ``key=value`` overrides -> a dataclass, saved resolved.

A stage builds its config once at its entry point and passes the typed object to the
constructors that use it; nothing reads config deep inside a function.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from speech.errors import SpeechError
from speech.fileio import atomic_write, not_utf8

T = TypeVar("T")


def load_config(cls: type[T], yaml_path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> T:
    """Merge ``cls`` defaults <- YAML file <- ``key=value`` overrides; return a ``cls``.

    Unknown keys and values of the wrong type raise SpeechError naming the file or override.
    """
    merged = OmegaConf.structured(cls)
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.is_file():
            raise SpeechError(f"{path}: config file not found")
        try:
            merged = OmegaConf.merge(merged, read_mapping(path))
        except OmegaConfBaseException as e:
            raise SpeechError(f"{path}: {_message(e)}") from None
    for item in overrides:
        if "=" not in item:
            raise SpeechError(f"override '{item}' is not of the form key=value")
    if overrides:
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        except OmegaConfBaseException as e:
            raise SpeechError(f"bad override in {list(overrides)}: {_message(e)}") from None
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def read_mapping(path: str | os.PathLike, what: str = "config", fix: str = "correct the file") -> dict:
    """The mapping in a YAML file, as plain Python. A file that is missing, unreadable, not
    UTF-8, not YAML (naming ``path:line``) or not a mapping is a one-line SpeechError about
    ``what`` ending with ``fix``."""
    path = Path(path)
    try:
        # OmegaConf's loader, as every config is read with it (it parses as yaml.SafeLoader
        # does, plus ${...} interpolations, kept as written)
        loaded = OmegaConf.load(path)
    except FileNotFoundError:
        raise SpeechError(f"{path}: no such {what} file; {fix}") from None
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except OSError as e:
        raise SpeechError(f"{path}: cannot read the {what} ({e.strerror}); {fix}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)  # where the parser gave up
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SpeechError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e}); {fix}") from None
    data = OmegaConf.to_container(loaded, resolve=False)
    if not isinstance(data, dict):
        raise SpeechError(f"{path}: not a {what} (a YAML {type(data).__name__}, not 'key: value' lines); {fix}")
    return data


def save_config(cfg, path: str | os.PathLike) -> None:
    """Write the fully resolved config as YAML (atomically)."""
    data = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    with atomic_write(path) as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(data)))


def config_from_dict(cls: type[T], data: dict, source: str | os.PathLike) -> T:
    """``cls`` defaults <- ``data`` (a mapping read from ``source``, which errors name)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), data))  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise SpeechError(f"{source}: {_message(e)}") from None


def _message(e: OmegaConfBaseException) -> str:
    """OmegaConf's message without the full_key/object_type lines it appends: one line."""
    return str(e.msg if hasattr(e, "msg") else e).strip().splitlines()[0]
