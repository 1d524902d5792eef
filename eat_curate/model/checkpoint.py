"""Model files: safetensors weights beside a JSON card (``card``).

A model is a folder holding ``model.safetensors`` (the network's own state
dict, nothing executable) and ``card.json`` (what the model is, where it came
from, how it scores, and the sha256 of the weights). Loading verifies the
hash before the weights are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from eat_curate.model.card import CARD_FILE, WEIGHTS_FILE, ModelCard, ModelError, read_card, sha256_of, write_card
from eat_curate.model.eat import EAT
from eat_curate.model.steering import SteeringSchedule, inference_rule
from eat_curate.model.weights_file import read_weights_header


@dataclass
class LoadedModel:
    model: EAT
    card: ModelCard
    path: Path | None  # None when built from bytes


def save_model(
    model: EAT,
    card: ModelCard,
    folder: Path,
    weights_dtype: torch.dtype = torch.float32,
    attachments: Mapping[str, bytes] | None = None,
) -> ModelCard:
    """Write ``model`` and its card into ``folder`` (created), filling hash, dtype and time.

    ``attachments``: other files of the model (name -> bytes), e.g. the images it was trained on
    (``model.training_images``); written before the card, so a card never names a missing file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (attachments or {}).items():
        if name in (WEIGHTS_FILE, CARD_FILE) or Path(name).name != name:
            raise ModelError(f"attachment {name!r} must be a plain file name other than the weights' and the card's")
        (folder / name).write_bytes(content)
    state = {key: value.detach().to("cpu") for key, value in model.state_dict().items()}
    state = {
        key: (value.to(weights_dtype) if value.is_floating_point() else value).contiguous()
        for key, value in state.items()
    }
    weights = folder / WEIGHTS_FILE
    # One metadata key only: safetensors writes metadata from a hash map, so with
    # several keys their order (and the file's sha256) could change run to run.
    # Serialised here and written by Python, so a full disk is an OSError (ENOSPC) like any other write.
    weights.write_bytes(save_safetensors_bytes(state, metadata={"format": "pt"}))
    card.architecture = model.preset.to_dict()
    card.preset = card.preset or model.preset.name
    card.head_mode = model.head_mode
    card.weights_dtype = str(weights_dtype).removeprefix("torch.")
    card.sha256 = sha256_of(weights)
    card.created = card.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    card_file = write_card(card, folder)
    # safetensors creates its file readable by its owner only; a model is meant to be shared (a cluster's
    # shared path, the package's built-in folder), so give it the permissions the umask gives any file.
    weights.chmod(card_file.stat().st_mode & 0o777)
    return card


def build_model(card: ModelCard) -> EAT:
    """An EAT with the card's architecture, head and inference steering (weights untouched)."""
    try:
        model = EAT(card.preset_spec(), head_mode=card.head_mode)
        schedule = SteeringSchedule.from_dict(card.steering_schedule) if card.steering_schedule else None
        model.set_steering(inference_rule(card.steering_mode, schedule))
    except (ValueError, TypeError, KeyError) as exc:  # e.g. widths that heads and groups do not divide
        raise ModelError(f"model {card.name!r} cannot be built from its card: {exc}") from None
    return model


def load_model(folder: Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load a model folder, refusing weights whose sha256 differs from the card's."""
    folder = Path(folder)
    card = read_card(folder)
    read_weights_header(folder)  # missing, not a file, cut short: said so, not as a hash mismatch
    try:
        weights = (folder / WEIGHTS_FILE).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the weights of model {card.name!r}: {exc.strerror or exc}") from None
    return load_model_bytes(card, weights, folder, map_location)


def load_model_bytes(
    card: ModelCard, weights: bytes, path: Path | None = None, map_location: str | torch.device = "cpu"
) -> LoadedModel:
    """Build a model from its card and the bytes of its safetensors file (e.g. shipped through Ray's object store)."""
    actual = hashlib.sha256(weights).hexdigest()
    if actual != card.sha256:
        raise ModelError(
            f"weights of model {card.name!r} do not match its card: sha256 {actual[:16]}... "
            f"but the card says {card.sha256[:16]}... (the file was changed or corrupted; re-import it)"
        )
    try:
        stored = load_safetensors_bytes(weights)
    except SafetensorError as exc:  # the card's hash was taken of a damaged file
        raise ModelError(f"weights of model {card.name!r} are not a readable safetensors file: {exc}") from None
    # Compared with a skeleton first: a card whose architecture is not the weights' is refused
    # before the network it describes (possibly huge) is allocated.
    with torch.device("meta"):
        skeleton = build_model(card)
    _check_weights_fit(card, stored, skeleton.state_dict())
    model = build_model(card)
    state = {key: value.float() if value.is_floating_point() else value for key, value in stored.items()}
    model.load_state_dict(state)
    return LoadedModel(model=model.eval().to(map_location), card=card, path=path)


def _check_weights_fit(card: ModelCard, stored: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> None:
    """ModelError naming what differs when ``stored`` is not a state dict of the card's architecture."""
    problem = f"weights of model {card.name!r} do not fit its architecture"
    missing, unexpected = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
    if missing or unexpected:
        parts = [f"{word} {len(keys)} tensors ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"
                 for word, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise ModelError(f"{problem}: {'; '.join(parts)}")
    for key, tensor in own.items():
        given = stored[key]
        if given.shape != tensor.shape:
            raise ModelError(f"{problem}: {key} is {list(given.shape)}, the architecture needs {list(tensor.shape)}")
        if given.is_floating_point() != tensor.is_floating_point():
            raise ModelError(f"{problem}: {key} holds {str(given.dtype).removeprefix('torch.')}, "
                             f"the architecture needs {str(tensor.dtype).removeprefix('torch.')}")
