"""The recipe's settings: one YAML file (``culling-nano.yaml`` beside this module) read into a :class:`Recipe`.

Every setting must be in the file, and nothing else: the card records the
settings as read, so the file alone says how the shipped model was made.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from eat_curate.errors import EatCurateError
from training.config import TrainConfig
from training.recipes.defect_datasets import CurriculumStage, GroupPlan
from training.recipes.wallpaper_photos import PHOTO_PACKAGES

DEFAULT_CONFIG = Path(__file__).with_name("culling-nano.yaml")
STEM_INITS = ("dct", "random")  # dct: training.recipes.dct_stem; random: the trainer's seeded start
# A setting's annotation -> the YAML values it takes (a whole number is a valid float; a bool is neither).
_SCALARS: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}


class RecipeError(EatCurateError):
    """A recipe config file is unreadable, incomplete or holds a setting the recipe does not have."""


@dataclass(frozen=True)
class Recipe:
    """Every setting of the recipe (the config file explains each); the card records them."""

    name: str
    preset: str
    packages: tuple[str, ...]  # Debian wallpaper packages whose photographs are used
    source_short_side: int  # photos are decoded once at this size
    split_seed: int
    val_photos: int
    test_photos: int
    epochs: int
    groups_per_epoch: int
    groups_per_batch: int
    group: GroupPlan
    curriculum: tuple[tuple[float, tuple[str, ...]], ...]  # (share of the epochs, defect types from then on)
    keep_epoch: str
    stem_init: str
    lr: float
    weight_decay: float
    warmup_epochs: float
    explore_share: float  # of the epochs
    emd_weight: float
    ranking_weight: float
    ranking_margin: float
    ranking_tie_weight: float
    clip_grad: float
    seed: int

    def __post_init__(self) -> None:
        for setting in fields(self):
            value, kinds = getattr(self, setting.name), _SCALARS.get(setting.type)
            if kinds is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise RecipeError(f"{setting.name}: {value!r} is not a {setting.type}")
        unknown = sorted(set(self.packages) - set(PHOTO_PACKAGES))
        if unknown:
            raise RecipeError(f"packages: no photographs known in {', '.join(unknown)} "
                              f"(known: {', '.join(PHOTO_PACKAGES)})")
        if self.stem_init not in STEM_INITS:
            raise RecipeError(f"stem_init {self.stem_init!r} is not one of {', '.join(STEM_INITS)}")
        try:
            for _, defects in self.curriculum:
                replace(self.group, defects=defects)  # checks the names now, not after the photos are fetched
        except ValueError as error:
            raise RecipeError(f"curriculum: {error}") from None

    def curriculum_stages(self) -> list[CurriculumStage]:
        """The curriculum in epochs of this recipe's length."""
        return [CurriculumStage(round(share * self.epochs), defects) for share, defects in self.curriculum]

    def train_config(
        self, work: Path, device: str, precision: str, threads: int | None, workers: int, resume: bool
    ) -> TrainConfig:
        return TrainConfig(
            preset=self.preset,
            name=self.name,
            epochs=self.epochs,
            batch_size=self.groups_per_batch,
            lr=self.lr,
            optimizer="adamw",
            weight_decay=self.weight_decay,
            schedule="cosine",
            warmup_epochs=self.warmup_epochs,
            keep_epoch=self.keep_epoch,
            precision=precision,
            clip_grad=self.clip_grad,
            loss="emd",
            loss_weight=self.emd_weight,
            ranking_weight=self.ranking_weight,
            ranking_margin=self.ranking_margin,
            ranking_tie_weight=self.ranking_tie_weight,
            flip=False,  # the groups mirror their views themselves
            explore_epochs=min(max(1, round(self.explore_share * self.epochs)), self.epochs - 1),
            seed=self.seed,
            device=device,
            threads=threads,
            loader_workers=workers,
            checkpoint_dir=str(work / "run"),
            resume=resume,
        )


def _check_keys(found: dict, expected: set[str], where: str) -> None:
    problems = []
    if expected - set(found):
        problems.append(f"missing {', '.join(sorted(expected - set(found)))}")
    if set(found) - expected:
        problems.append(f"unknown {', '.join(sorted(set(found) - expected))}")
    if problems:
        raise RecipeError(f"{where}: {'; '.join(problems)}")


def read_recipe(path: Path = DEFAULT_CONFIG) -> Recipe:
    """The recipe a config file holds; every setting must be there, and only settings."""
    try:
        settings = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RecipeError(f"cannot read recipe config {path}: {error}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("group"), dict):
        raise RecipeError(f"{path}: expected a mapping of settings with a `group` mapping")
    _check_keys(settings, {setting.name for setting in fields(Recipe)}, str(path))
    _check_keys(settings["group"], {setting.name for setting in fields(GroupPlan)}, f"{path}: group")
    group = {key: tuple(value) if isinstance(value, list) else value for key, value in settings["group"].items()}
    try:
        return Recipe(**{
            **settings,
            "packages": tuple(settings["packages"]),
            "group": GroupPlan(**group),
            "curriculum": tuple((share, tuple(defects)) for share, defects in settings["curriculum"]),
        })
    except (TypeError, ValueError) as error:
        raise RecipeError(f"{path}: {error}") from None
