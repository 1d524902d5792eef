"""What a training run does: one flat, validated record, from a YAML file and command-line flags.

The defaults are the paper's AVA recipe (Adam, lr 1e-5, x0.1 every 5 epochs,
20 epochs, batch 16, random horizontal flip, EMD loss), with EAT's explore
phase over the first learning-rate stage; a fine-tune of a trained EAT
explored already and gets none (:func:`with_explore_default`).
``training/configs/*.yaml`` hold named variants; flags given on the command
line override the file.
"""

from __future__ import annotations

import math
import os
import select
import stat
import time
import typing
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from eat_curate.errors import EatCurateError
from eat_curate.model.presets import PRESETS
from eat_curate.model.steering import SteeringRule, SteeringSchedule
from training.labels import not_utf8

SCHEDULES = ("step", "cosine", "constant")
OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("fp32", "bf16")
LOSSES = ("auto", "emd", "mse")
EMD_VARIANTS = ("per-sample", "published")
ENGINES = ("local", "ray")
KEEP_EPOCHS = ("best", "last")
CONFIGS_DIR = Path(__file__).parent / "configs"
# How long a FIFO given as the config file may stay without a writer before it is refused, not waited on for ever.
FIFO_WRITER_WAIT_S = 3.0


class ConfigError(EatCurateError):
    """A training configuration is invalid; the message names the setting."""


@dataclass
class TrainConfig:
    # Data
    data: str | None = None  # label file: AVA.txt, TAD66K CSV, or a CSV/Parquet table
    images: str | None = None  # folder the label file's image names are relative to
    label_format: str = "auto"  # auto | ava | tad66k | table
    train_ids: str | None = None  # official split: ids of training images
    test_ids: str | None = None  # official split: ids of test images
    # Share held out for validation where no split column names val rows: of all images for the seeded
    # split, of the training images when test images come from id lists or a split column. None: 5%.
    val_fraction: float | None = None
    # Model
    preset: str | None = None  # None: tiny, or the --init model's preset
    init: str | None = None  # a store model to start from (DAT ImageNet import, or an EAT to fine-tune)
    name: str | None = None  # store name of the trained model
    drop_path: float | None = None  # None: the preset's rate
    # Optimisation
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-5
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "step"  # step: x step_gamma every step_epochs; cosine: warm-up then cosine; constant
    step_epochs: int = 5
    step_gamma: float = 0.1
    warmup_epochs: float = 0.0
    # best: the exploit epoch with the highest validation SRCC; last: the last epoch (a schedule that ends at
    # lr 0, with a validation set too small to tell epochs apart)
    keep_epoch: str = "best"
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    clip_grad: float | None = None  # max global gradient norm
    loss: str = "auto"  # auto: EMD on votes, MSE on score/10 for single scores
    emd: str = "per-sample"  # per-sample: mean over images of each image's EMD; published: one sqrt of the batch mean
    loss_weight: float = 1.0  # weight of the EMD / MSE term; below 1 the ranking loss leads (generated defects)
    ranking_weight: float = 0.0  # weight of the pairwise ranking loss within groups (generated defects); 0: off
    ranking_margin: float = 0.5  # the better picture of a pair must lead by this x the difference of their targets
    ranking_tie_weight: float = 0.0  # pulls together same-target pictures of a group (mirror, re-encoding)
    # Augmentation
    flip: bool = True  # random horizontal flip
    crop_from: int | None = None  # resize to this size, then a random crop to the model's input (TAD66K: 256)
    # Offset steering: explore (weaken offsets heading into the interest quadrant), then exploit.
    # None: FRESH_EXPLORE_EPOCHS, or 0 to fine-tune a trained model (see with_explore_default).
    explore_epochs: int | None = None
    explore_toward: float = 0.25
    explore_away: float = 1.0
    exploit_toward: float = 1.0
    exploit_away: float = 1.0
    # Run
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads (None: torch's choice)
    loader_workers: int = 2  # decoding processes per training process
    checkpoint_dir: str | None = None
    resume: bool = False
    # Engine
    engine: str = "local"  # local | ray
    workers: int = 1  # Ray Train workers (DDP); the batch size is per worker
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0

    def __post_init__(self) -> None:
        self._check_choice("schedule", SCHEDULES)
        self._check_choice("optimizer", OPTIMIZERS)
        self._check_choice("precision", PRECISIONS)
        self._check_choice("loss", LOSSES)
        self._check_choice("emd", EMD_VARIANTS)
        self._check_choice("engine", ENGINES)
        self._check_choice("keep_epoch", KEEP_EPOCHS)
        for name in ("epochs", "batch_size", "step_epochs", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "cpus_per_worker"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("weight_decay", "warmup_epochs", "explore_epochs", "loader_workers", "gpus_per_worker",
                     "loss_weight", "ranking_weight", "ranking_margin", "ranking_tie_weight"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("explore_toward", "explore_away", "exploit_toward", "exploit_away"):
            if getattr(self, name) < 0:
                raise ConfigError(f"steering factor {name} must not be negative, got {getattr(self, name)}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")
        if not 0 < self.step_gamma <= 1:
            raise ConfigError(f"step_gamma must be in (0, 1], got {self.step_gamma}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"clip_grad must be positive, got {self.clip_grad}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r} is not one of {', '.join(sorted(PRESETS))}")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name} {getattr(self, name)!r} is not one of {', '.join(choices)}")

    @property
    def steering_schedule(self) -> SteeringSchedule:
        if self.explore_epochs is None:
            raise ConfigError("explore_epochs is not settled yet: see with_explore_default")
        return SteeringSchedule(
            explore_epochs=self.explore_epochs,
            explore=SteeringRule(self.explore_toward, self.explore_away),
            exploit=SteeringRule(self.exploit_toward, self.exploit_away),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def resume_conflicts(self, saved: dict) -> list[str]:
        """Settings of a checkpoint's run that this config changes in a way that would change its result."""
        # A setting the checkpoint lacks is newer than the run, which then ran with its default.
        ran_with = {**asdict(TrainConfig()), **saved}
        conflicts = [
            f"{key}: {ran_with[key]!r} -> {value!r}"
            for key, value in self.to_dict().items()
            if key not in RESUMABLE_CHANGES and ran_with[key] != value
        ]
        # More epochs continue a step or constant schedule unchanged, but stretch a cosine one.
        if self.schedule == "cosine" and saved.get("epochs") != self.epochs:
            conflicts.append(f"epochs: {saved.get('epochs')!r} -> {self.epochs!r} (would stretch the cosine schedule)")
        return conflicts


FRESH_EXPLORE_EPOCHS = 5  # the paper's explore phase: its first learning-rate stage


def with_explore_default(config: TrainConfig, init_is_trained: bool) -> TrainConfig:
    """``config`` with its explore phase settled: as given, else none when it fine-tunes a trained model
    (``init_is_trained``: that model explored when it was trained), else :data:`FRESH_EXPLORE_EPOCHS`."""
    if config.explore_epochs is not None:
        return config
    return replace(config, explore_epochs=0 if init_is_trained else FRESH_EXPLORE_EPOCHS)


# Settings a resumed run may change: where and how it runs, not what it computes.
RESUMABLE_CHANGES = frozenset(
    {"resume", "epochs", "threads", "device", "loader_workers", "checkpoint_dir", "engine", "workers",
     "gpus_per_worker", "cpus_per_worker"}
)


# Each setting's type, evaluated (the annotations are strings under postponed evaluation).
SETTING_TYPES: dict[str, object] = typing.get_type_hints(TrainConfig)


def _coerce(name: str, value: object) -> object:
    """A YAML or flag value as its setting's type (YAML 1.1 reads ``1e-5`` as a string)."""
    if value is None:
        return None
    hint = SETTING_TYPES[name]
    kinds = [kind for kind in (typing.get_args(hint) or (hint,)) if kind is not type(None)]
    for kind in kinds:
        if isinstance(value, bool) != (kind is bool):
            continue  # no silent true -> 1.0 or "yes" -> True
        if kind is int and isinstance(value, float) and not value.is_integer():
            continue
        try:
            coerced = kind(value)
        except (TypeError, ValueError):
            continue
        if isinstance(coerced, float) and not math.isfinite(coerced):  # YAML's .nan and .inf pass every check
            raise ConfigError(f"setting {name}: {value!r} is not a finite number")
        return coerced
    expected = " or ".join(getattr(kind, "__name__", str(kind)) for kind in kinds)
    raise ConfigError(f"setting {name}: {value!r} is not a valid {expected}")


def read_config_file(path: Path | str) -> dict:
    """Settings from a YAML file (a flat mapping of TrainConfig fields; '-' and '_' are the same)."""
    path = Path(path)
    if not path.is_file() and (CONFIGS_DIR / f"{path}.yaml").is_file():
        path = CONFIGS_DIR / f"{path}.yaml"  # a bundled config by name: `--config ava`
    try:
        data = yaml.safe_load(_config_text(path)) or {}
    except FileNotFoundError:
        bundled = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        raise ConfigError(f"config file {path} does not exist (bundled configs: {bundled})") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} {not_utf8(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    settings = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - set(SETTING_TYPES))
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return settings


def _config_text(path: Path) -> str:
    """The text of a config file. A FIFO (a pipe: ``--config <(...)``, or one made with mkfifo) is read as its
    writer writes it, and refused if none comes, instead of waiting at ``open`` for ever."""
    if not stat.S_ISFIFO(os.stat(path).st_mode):
        return path.read_text()
    return _read_pipe(path, FIFO_WRITER_WAIT_S).decode("utf-8")


def _read_pipe(path: Path, wait: float) -> bytes:
    """Everything written into the FIFO at ``path``; ``ConfigError`` if, for ``wait`` seconds, nothing was
    written and no writer held it open."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # never waits for a writer
    try:
        chunks: list[bytes] = []
        had_writer = False
        deadline = time.monotonic() + wait
        while True:
            try:
                chunk = os.read(descriptor, 1 << 16)
            except BlockingIOError:  # a writer holds it open and has written nothing more yet: its pace
                had_writer = True
                select.select([descriptor], [], [])
                continue
            if chunk:
                chunks.append(chunk)
            elif chunks or had_writer:  # end of file: every writer closed it
                return b"".join(chunks)
            elif time.monotonic() < deadline:  # no writer yet: one may still open it
                time.sleep(0.05)
            else:
                raise ConfigError(
                    f"config file {path} is a FIFO with no writer: nothing wrote to it within {wait:g} s; "
                    "give a YAML file, or write the settings into the FIFO"
                )
    finally:
        os.close(descriptor)


def build_config(file: Path | str | None = None, **overrides: object) -> TrainConfig:
    """A config from an optional YAML file, then ``overrides`` (None means: not given)."""
    settings = read_config_file(file) if file is not None else {}
    settings.update({key: value for key, value in overrides.items() if value is not None})
    unknown = sorted(set(settings) - set(SETTING_TYPES))
    if unknown:
        raise ConfigError(f"unknown settings {', '.join(unknown)}")
    return TrainConfig(**{key: _coerce(key, value) for key, value in settings.items()})


def config_from_dict(data: dict) -> TrainConfig:
    """Rebuild a config from ``to_dict`` output (a checkpoint or a Ray worker's arguments)."""
    return TrainConfig(**{key: value for key, value in data.items() if key in SETTING_TYPES})
