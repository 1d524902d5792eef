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
from safetensors.torch import save_file

from eat_curate.model.card import CARD_FILE, WEIGHTS_FILE, ModelCard, ModelError, read_card, sha256_of, write_card
from eat_curate.model.eat import EAT
from eat_curate.model.steering import SteeringSchedule, inference_rule


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
    save_file(state, str(weights), metadata={"format": "pt"})
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
    model = EAT(card.preset_spec(), head_mode=card.head_mode)
    schedule = SteeringSchedule.from_dict(card.steering_schedule) if card.steering_schedule else None
    model.set_steering(inference_rule(card.steering_mode, schedule))
    return model


def load_model(folder: Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load a model folder, refusing weights whose sha256 differs from the card's."""
    folder = Path(folder)
    card = read_card(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder} is not a model: {WEIGHTS_FILE} is missing")
    return load_model_bytes(card, weights.read_bytes(), folder, map_location)


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
    model = build_model(card)
    try:
        stored = load_safetensors_bytes(weights)
    except SafetensorError as exc:  # the card's hash was taken of a damaged file
        raise ModelError(f"weights of model {card.name!r} are not a readable safetensors file: {exc}") from None
    state = {key: value.float() if value.is_floating_point() else value for key, value in stored.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # the names fit, a shape does not: the card's architecture is not the weights'
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise ModelError(f"weights of model {card.name!r} do not fit its architecture: {detail}") from None
    if missing or unexpected:
        raise ModelError(
            f"weights of model {card.name!r} do not fit its architecture: "
            f"missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}"
        )
    return LoadedModel(model=model.eval().to(map_location), card=card, path=path)
