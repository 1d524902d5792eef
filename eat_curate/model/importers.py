"""Import foreign weights: published EAT checkpoints and DAT ImageNet checkpoints.

Both come as PyTorch pickles (or as safetensors). Pickles are read with
``torch.load(weights_only=True)``, which rebuilds tensors and plain
containers only: a file that carries any other Python object is refused
before anything in it runs. A file that is damaged, cut short or not a
checkpoint at all is refused in one line saying so, whatever the reading
library raised.
"""

from __future__ import annotations

import pickle
import stat
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from eat_curate.model.card import ModelError
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


# How a torch.save file starts: a zip archive (since PyTorch 1.6) or a pickle (protocol 2+, the legacy format).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
_DAMAGED = "the file is damaged, cut short, or not a checkpoint"


def read_state_file(path: Path) -> dict:
    """Read a checkpoint without executing code from it; ModelError in one line for any unreadable file."""
    path = Path(path)
    try:
        facts = path.stat()
    except OSError as exc:
        raise ModelError(f"no such checkpoint file: {path} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(facts.st_mode):  # a FIFO would block the read, a device never end
        kind = "a folder" if stat.S_ISDIR(facts.st_mode) else "a FIFO" if stat.S_ISFIFO(facts.st_mode) else "special"
        raise ModelError(f"{path.name} is not a regular file ({kind}): not a checkpoint")
    if facts.st_size == 0:
        raise ModelError(f"{path.name} is empty (0 bytes): not a checkpoint")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    return _read_torch_file(path)


def _read_safetensors(path: Path) -> dict:
    try:
        return load_file(str(path))
    except SafetensorError as exc:  # "header too small", "incomplete metadata, file not fully covered", ...
        raise ModelError(f"cannot read {path.name} as safetensors ({_DAMAGED}): {_first_line(exc)}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def _read_torch_file(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise ModelError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        raise ModelError(
            f"{path.name} is not a PyTorch checkpoint (neither a zip archive nor a pickle); {_DAMAGED}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(exc)
        if "Unsupported global" in detail:
            raise ModelError(
                f"refusing {path.name}: it holds Python objects beyond tensors (a pickle payload), "
                f"which could run code when loaded. Detail: {detail}"
            ) from None
        # Another opcode it does not allow: a payload in another form, or bytes that are not a pickle after all.
        raise ModelError(
            f"refusing {path.name}: a pickle the safe loader cannot read, either a pickle payload (Python objects "
            f"beyond tensors, which could run code when loaded) or a damaged file. Detail: {detail}"
        ) from None
    except Exception as exc:  # torch.load reports a damaged file as RuntimeError, EOFError, KeyError, ...
        raise ModelError(f"cannot read {path.name} as a PyTorch checkpoint ({_DAMAGED}): {_first_line(exc)}") from None


def _unpickler_detail(exc: pickle.UnpicklingError) -> str:
    """The line of torch's long weights-only message that says what was found."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for marker in ("Unsupported global", "Unsupported operand", "WeightsUnpickler error:"):
        for line in lines:
            if marker in line:
                line = line.removeprefix("WeightsUnpickler error:").strip() or line
                return line.split(". ", 1)[0].rstrip(".")
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    """The first sentence of the first line: torch's messages go on for paragraphs."""
    lines = str(exc).strip().splitlines()
    return lines[0].split(". ", 1)[0].rstrip(".") if lines else type(exc).__name__


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
    if given and not given & own:  # not one name in common: no wrong preset explains that
        raise ModelError(
            f"none of the checkpoint's {len(given)} tensors ({', '.join(sorted(given)[:3])}, ...) is one of EAT's: "
            "it holds another kind of model, not EAT or DAT"
        )
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
    except RuntimeError as exc:  # a position table that cannot be resized to this preset's
        raise ModelError(f"checkpoint does not match this preset (wrong --preset?): {_first_line(exc)}") from None
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
