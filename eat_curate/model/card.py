"""A model's card: what the model is, where it came from, how it scores, and the sha256 of its weights.

A model is a folder holding ``model.safetensors`` and ``card.json``. The card
is read and checked here without torch, so listing and describing models is
quick; ``checkpoint`` loads and saves the weights.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eat_curate.errors import EatCurateError
from eat_curate.model.modes import HEAD_MODES, STEERING_MODES
from eat_curate.model.presets import EATPreset

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_FORMAT = 1
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelError(EatCurateError):
    """A model cannot be found, read, trusted or built; the message says why."""


def validate_model_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise ModelError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass
class ModelCard:
    name: str
    preset: str
    architecture: dict
    head_mode: str = "softmax"
    steering_mode: str = "none"
    steering_schedule: dict | None = None
    trained: bool = False
    source: str = ""
    training_data: str | None = None
    metrics: dict = field(default_factory=dict)
    scope: str = ""
    license: str | None = None
    weights_dtype: str = "float32"
    sha256: str = ""
    created: str = ""
    card_format: int = CARD_FORMAT
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head_mode not in HEAD_MODES:
            raise ModelError(f"card of {self.name}: unknown head mode {self.head_mode!r}")
        if self.steering_mode not in STEERING_MODES:
            raise ModelError(f"card of {self.name}: unknown steering mode {self.steering_mode!r}")

    @property
    def input_size(self) -> int:
        return int(self.architecture["image_size"])

    @property
    def model_id(self) -> str:
        """Name plus a short weight hash: what every score record names as its model."""
        return f"{self.name}@{self.sha256[:12]}"

    def preset_spec(self) -> EATPreset:
        return EATPreset.from_dict(self.architecture)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_size"] = self.input_size
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ModelCard":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_card(card: ModelCard, folder: Path) -> Path:
    """Write ``card`` as ``folder``'s card file (keys sorted, so a card rewritten unchanged is the same file)."""
    card_file = folder / CARD_FILE
    card_file.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n")
    return card_file


def read_card(folder: Path) -> ModelCard:
    card_path = folder / CARD_FILE
    try:
        data = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a model: {CARD_FILE} is missing") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{card_path} is not valid JSON: {exc}") from None
    try:
        return ModelCard.from_dict(data)
    except TypeError as exc:
        raise ModelError(f"{card_path} lacks required fields: {exc}") from None
