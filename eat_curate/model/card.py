"""A model's card: what the model is, where it came from, how it scores, and the sha256 of its weights.

A model is a folder holding ``model.safetensors`` and ``card.json``. The card
is read and checked here without torch, so listing and describing models is
quick; ``checkpoint`` loads and saves the weights. A card is a file anyone can
edit or a disk can damage: every field is checked on reading, and a card that
fails is a :class:`BrokenModelError` saying what is wrong in one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eat_curate.errors import EatCurateError
from eat_curate.model.modes import HEAD_MODES, STEERING_MODES
from eat_curate.model.presets import EATPreset

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_FORMAT = 1
MAX_CARD_BYTES = 16 << 20  # the built-in model's card, figures and all, is 35 kB
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_DERIVED = ("input_size",)  # written for readers of the file, recomputed on reading


class ModelError(EatCurateError):
    """A model cannot be found, read, trusted or built; the message says why."""


class BrokenModelError(ModelError):
    """A model folder whose card or weights cannot be used; ``problem`` says why, without the folder."""

    def __init__(self, folder: Path, problem: str) -> None:
        super().__init__(f"{folder} is not a usable model: {problem}")
        self.folder = folder
        self.problem = problem


def validate_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        shown = repr(name) if len(str(name)) <= 80 else f"{str(name)[:40]!r}... ({len(str(name))} characters)"
        raise ModelError(
            f"invalid model name {shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
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
        """A card from its JSON form; ValueError naming the first field that is missing or wrong.

        Fields this version does not know are ignored: a card of the same format from a newer
        eat-curate may describe more. A card of a newer format is refused (its fields may mean more).
        """
        if not isinstance(data, dict):
            raise ValueError(f"holds {_json_kind(data)}, not an object of fields")
        check_card_fields(data)
        known = set(cls.__dataclass_fields__)
        card = cls(**{key: value for key, value in data.items() if key in known})
        card.preset_spec()  # checked above; fails here only if the rules disagree
        return card


# Each field a card may hold: (the types it may have, whether it must be present).
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), True),
    "preset": ((str,), True),
    "architecture": ((dict,), True),
    "head_mode": ((str,), False),
    "steering_mode": ((str,), False),
    "steering_schedule": ((dict, type(None)), False),
    "trained": ((bool,), False),
    "source": ((str,), False),
    "training_data": ((str, type(None)), False),
    "metrics": ((dict,), False),
    "scope": ((str,), False),
    "license": ((str, type(None)), False),
    "weights_dtype": ((str,), False),
    "sha256": ((str,), True),
    "created": ((str,), False),
    "card_format": ((int,), False),
    "extra": ((dict,), False),
}


def check_card_fields(data: dict) -> None:
    """Raise ValueError for the first field of ``data`` (a card's JSON object) that a model cannot run with."""
    card_format = data.get("card_format", CARD_FORMAT)
    if isinstance(card_format, int) and not isinstance(card_format, bool) and card_format > CARD_FORMAT:
        raise ValueError(
            f"written by a newer eat-curate (card format {card_format}; this one reads {CARD_FORMAT}): "
            "upgrade eat-curate"
        )
    for key, (types, required) in _FIELDS.items():
        if key not in data:
            if required:
                raise ValueError(f"the field {key!r} is missing")
            continue
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join("null" if kind is type(None) else _TYPE_WORDS[kind] for kind in types)
            raise ValueError(f"{key} must be {wanted}, not {_json_kind(value)}")
    if not data["name"]:
        raise ValueError("name is empty")
    if data.get("head_mode", "softmax") not in HEAD_MODES:
        raise ValueError(f"unknown head mode {data['head_mode']!r}; expected one of {', '.join(HEAD_MODES)}")
    mode = data.get("steering_mode", "none")
    if mode not in STEERING_MODES:
        raise ValueError(f"unknown steering mode {mode!r}; expected one of {', '.join(STEERING_MODES)}")
    schedule = data.get("steering_schedule")
    if schedule is not None:
        _check_schedule(schedule)
    elif mode == "scheduled":
        raise ValueError("steering mode 'scheduled' needs the steering_schedule it was trained with")
    if not _SHA256_PATTERN.match(data["sha256"]):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, not {_short(data['sha256'])!r}")
    if data.get("card_format", CARD_FORMAT) < 1:
        raise ValueError(f"card_format must be 1 or more, not {data['card_format']}")
    try:
        EATPreset.from_dict(data["architecture"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"architecture: {error}") from None


def _check_schedule(schedule: dict) -> None:
    """As ``steering.SteeringSchedule.from_dict`` reads it (that module needs torch; this one must not)."""
    epochs = schedule.get("explore_epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"steering_schedule.explore_epochs must be a whole number of 0 or more, not {epochs!r}")
    for part in ("explore", "exploit"):
        rule = schedule.get(part)
        if not (isinstance(rule, dict) and set(rule) <= {"toward", "away"}
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in rule.values())):
            raise ValueError(f"steering_schedule.{part} must hold numbers 'toward' and 'away', not {_short(rule)!r}")


_TYPE_WORDS = {str: "text", dict: "an object", bool: "true or false", int: "a whole number"}


def _json_kind(value: object) -> str:
    """How JSON would call ``value``'s type, with the value when it is short."""
    kind = {dict: "an object", list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)
    return kind if isinstance(value, (dict, list)) else f"{kind} ({_short(value)!r})" if value is not None else kind


def _short(value: object) -> object:
    text = str(value)
    return value if len(text) <= 40 else text[:40] + "..."


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
    """``folder``'s card, checked; BrokenModelError if it is missing, unreadable or wrong."""
    folder = Path(folder)
    text = _card_text(folder)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BrokenModelError(folder, f"{CARD_FILE} is not valid JSON ({error})") from None
    except RecursionError:  # json recurses once per level: [[[[...]]]] deep enough ends Python's stack
        raise BrokenModelError(folder, f"{CARD_FILE} is not a card: JSON nested too deeply") from None
    try:
        return ModelCard.from_dict(data)
    except (ValueError, ModelError) as error:
        raise BrokenModelError(folder, f"{CARD_FILE} {_as_clause(str(error))}") from None


def _card_text(folder: Path) -> str:
    card_path = folder / CARD_FILE
    try:
        facts = card_path.stat()
        if not stat.S_ISREG(facts.st_mode):  # a FIFO would block a read; a folder cannot be read
            raise BrokenModelError(folder, f"{CARD_FILE} is not a regular file")
        if facts.st_size > MAX_CARD_BYTES:
            raise BrokenModelError(folder, f"{CARD_FILE} is {facts.st_size:,} bytes, too large to be a card")
        raw = card_path.read_bytes()
    except FileNotFoundError:
        raise BrokenModelError(folder, f"{CARD_FILE} is missing") from None
    except OSError as error:
        raise BrokenModelError(folder, f"cannot read {CARD_FILE}: {error.strerror or error}") from None
    if not raw.strip():
        raise BrokenModelError(folder, f"{CARD_FILE} is empty")
    try:
        return raw.decode("utf-8-sig")  # an editor's byte-order mark is no damage
    except UnicodeDecodeError as error:
        raise BrokenModelError(folder, f"{CARD_FILE} is not UTF-8 text (byte {error.start})") from None


def _as_clause(problem: str) -> str:
    """A field's problem as the rest of a sentence about the card file."""
    if problem.startswith(("holds ", "written by ")):
        return problem
    return f"is wrong: {problem}"
