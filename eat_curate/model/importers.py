"""Import foreign weights: published EAT checkpoints and DAT ImageNet checkpoints.

Both come as PyTorch pickles. They are read with ``torch.load(weights_only=
True)``, which rebuilds tensors and plain containers only: a file that
carries any other Python object is refused before anything in it runs.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from eat_curate.model.checkpoint import ModelError
from eat_curate.model.eat import EAT, checkpoint_filter_fn
from eat_curate.model.presets import EATPreset
from eat_curate.model.weight_formats import FORMATS

# Keys EAT adds to DAT and the head DAT ImageNet weights must not bring.
_FRESH_IN_DAT_IMPORT = ("ref_point14", "cls_head")


@dataclass
class ImportedWeights:
    model: EAT
    format: str
    head_mode: str
    steering_mode: str
    trained: bool
    fresh_keys: list[str]  # initialised here, not taken from the file


def read_state_file(path: Path) -> dict:
    """Read a checkpoint without executing code from it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such checkpoint file: {path}")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"refusing {path.name}: it holds Python objects beyond tensors (a pickle payload), "
            f"which could run code when loaded. Detail: {first_line}"
        ) from None
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ModelError(f"cannot read {path.name} as a PyTorch checkpoint: {exc}") from None


def _tensor_dict(data: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelError(f"{path.name} is not a state dict of tensors")
    return data


def detect_format(data: dict) -> str:
    """``dat-imagenet`` for a dict wrapping ``model`` or a DAT state without interest points, else ``published-eat``."""
    if isinstance(data.get("model"), dict):
        return "dat-imagenet"
    if any(".ref_point14." in key for key in data):
        return "published-eat"
    return "dat-imagenet"


def _check_keys(
    model: EAT, state: dict[str, torch.Tensor], allowed_missing: tuple[str, ...]
) -> list[str]:
    own = set(model.state_dict())
    given = set(state)
    unexpected = sorted(given - own)
    missing = sorted(key for key in own - given)
    fresh = [key for key in missing if any(part in key for part in allowed_missing)]
    missing = [key for key in missing if key not in fresh]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} keys: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            problems.append(
                f"unexpected {len(unexpected)} keys: {', '.join(unexpected[:6])}{' ...' if len(unexpected) > 6 else ''}"
            )
        raise ModelError("checkpoint does not match this preset; " + "; ".join(problems) + " (wrong --preset or --format?)")
    return fresh


def import_weights(path: Path, preset: EATPreset, fmt: str = "auto") -> ImportedWeights:
    """Read ``path`` and load it into a new EAT of ``preset``; every key must be accounted for."""
    if fmt not in FORMATS:
        raise ModelError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    raw = read_state_file(Path(path))
    if not isinstance(raw, dict):
        raise ModelError(f"{Path(path).name} does not hold a state dict")
    if fmt == "auto":
        fmt = detect_format(raw)

    if fmt == "published-eat":
        state = _tensor_dict(raw, Path(path))
        model = EAT(preset, head_mode="published")
        allowed_missing: tuple[str, ...] = ()
    else:
        state = _tensor_dict(raw["model"] if isinstance(raw.get("model"), dict) else raw, Path(path))
        state = {key: value for key, value in state.items() if not key.startswith("cls_head.")}
        model = EAT(preset, head_mode="softmax")
        allowed_missing = _FRESH_IN_DAT_IMPORT

    try:
        converted = checkpoint_filter_fn(state, model)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    fresh = _check_keys(model, converted, allowed_missing)
    model.load_state_dict(converted, strict=False)
    published = fmt == "published-eat"
    return ImportedWeights(
        model=model.eval(),
        format=fmt,
        head_mode=model.head_mode,
        steering_mode="published" if published else "none",
        trained=published,
        fresh_keys=fresh,
    )
