"""The recipe of eat-curate's built-in model: a nano EAT trained on real photos with generated defects.

    python -m training.recipes.default_model --cache .cache/wallpapers \\
        --out eat_curate/model/builtin/culling-nano [--device cuda] [--resume]

1. Fetch Debian's wallpaper packages (MATE's, KDE's, GNOME's and Lomiri's two;
   ``--packages`` picks fewer for trials) into ``--cache`` (``apt-get
   download`` + ``dpkg -x``; reused when present) and keep the real
   photographs (:mod:`training.recipes.wallpaper_photos`), one file per picture.
2. Hold out whole photographs: a seeded few validated after every epoch
   (printed), a few more for the reported figures; train on the rest.
3. Train with the project's trainer: groups of a clean view, a harmless copy
   of it (mirrored and/or re-encoded) and its degraded versions, mostly one
   defect at rising strengths (:mod:`training.degraded_data`), taught in a
   curriculum: the two blurs
   alone, then with noise and JPEG blocking, then (from 45% of the epochs)
   every defect type; a pairwise ranking loss within each group leads, EMD
   to the target distribution (:mod:`training.degradation_targets`) at half
   the ranking loss's weight anchors the scale; the patch embedding starts as a
   whitened DCT filter bank (:mod:`training.stem_init`); EAT's explore/exploit
   steering schedule, cosine learning rate to 0, bf16 only where it is fast.
   Checkpoints every epoch in ``--work``; ``--resume`` continues a stopped run.
4. Keep the last epoch (two validation photos cannot tell good epochs apart:
   the one they picked measured worse on the held-out photos than the last),
   round its weights to float16 (as they ship), measure them on the
   held-out photos (:mod:`training.degradation_eval`), print the table and
   write ``--out``: ``model.safetensors`` and ``card.json`` only.

Seeded throughout: the same command gives the same model on the same
machine. An epoch (4,000 pictures) takes about 2.7 minutes on a 2-core CPU
with AMX (bf16, ~25 pictures/s; the network alone trains at ~31/s there,
making the pictures takes the rest; ~4.2 minutes, ~16 pictures/s, on a
slower 2.1 GHz AMX Xeon), 1.8 to three on a 2-core EPYC with
AVX512-BF16 (bf16, 22-39 pictures/s) and four and a half to seven and a
half on 2-core AVX2 CPUs (fp32, 9-15 pictures/s); ``--device cuda`` is much
faster.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import click
import torch
from tqdm import tqdm

from eat_curate.benchmarks.photos import fetch_debian_wallpapers
from eat_curate.errors import EatCurateError
from eat_curate.model.checkpoint import validate_model_name
from eat_curate.model.model_store import ModelStore
from eat_curate.scoring.predictor import resolve_device, resolve_dtype
from training.config import STEM_INITS, TrainConfig
from training.degradation_eval import DefectReport, evaluate_defects, validation_samples
from training.degradations import DEFECTS
from training.degraded_data import CurriculumStage, DegradedGroups, DegradedImages, GroupPlan, SourcePhoto
from training.recipes.model_card import build_card
from training.recipes.options import cache_option, device_option, threads_option
from training.recipes.wallpaper_photos import (
    KNOWN_PHOTO_PACKAGES,
    PHOTO_PACKAGES,
    PhotoFile,
    load_photo,
    package_versions,
    select_photographs,
)
from training.trainer import DataSets, Trainer, TrainResult

DEFAULT_NAME = "culling-nano"

FOCUS_DEFECTS = ("gaussian_blur", "motion_blur")
DETAIL_DEFECTS = (*FOCUS_DEFECTS, "noise", "jpeg")  # all change how much fine detail a picture has


@dataclass(frozen=True)
class Recipe:
    """Every setting of the recipe; the card records them."""

    name: str = DEFAULT_NAME
    preset: str = "nano"
    # Debian packages whose photographs are used: the three desktops' 23 and Lomiri's 14. With the desktops'
    # alone, 17 photos trained the model and its clean views spread by twice as much on new photos.
    packages: tuple[str, ...] = PHOTO_PACKAGES
    # Photographs that only ever train: ``packages``' photographs are split as without them, so a trial with
    # more photographs is measured on the same held-out ones as the models before it.
    train_only_packages: tuple[str, ...] = ()
    source_short_side: int = 1024  # photos are decoded once at this size; crops stay above the 256 px working size
    split_seed: int = 0
    val_photos: int = 2
    test_photos: int = 6
    epochs: int = 20
    groups_per_epoch: int = 800  # x 5 pictures: 4,000 an epoch
    groups_per_batch: int = 8  # x group size = images per step
    # Every group holds a harmless copy of its clean view (mirrored and/or re-encoded), taught to tie with it:
    # ladders hold none, and without one new photos moved more under mirroring
    # (README.md beside this file: "Stability on new photos"; it keeps every trial's figures).
    group: GroupPlan = field(default_factory=lambda: GroupPlan(size=5, tie_variants=1, ladder_share=0.75))
    # (share of the epochs, defect types from then on): focus first, then the other detail defects, then all.
    # Learnt together from the start, blur and noise pull the first features in opposite directions and
    # focus is never learnt; a detail stage shorter than 30% of the epochs leaves noise read as good detail
    # (README.md beside this file: "Why focus stalls").
    curriculum: tuple[tuple[float, tuple[str, ...]], ...] = (
        (0.0, FOCUS_DEFECTS), (0.15, DETAIL_DEFECTS), (0.45, DEFECTS)
    )
    keep_epoch: str = "last"  # the validation photos are too few to pick a better one (see the module's docstring)
    stem_init: str = "dct"  # whitened DCT patch embedding: focus, noise and blocking visible from the start
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    explore_share: float = 0.25  # of the epochs: EAT's explore phase, offsets toward the interest quadrant weakened
    # Ranking leads: the order of a photo's copies is what culling needs and is the same whatever the
    # photo. EMD to the absolute target anchors the scale across photos; at 0.5 (not 0.1) it ordered more
    # defect types on new photos.
    emd_weight: float = 0.5
    ranking_weight: float = 1.0
    ranking_margin: float = 0.3  # x the target gap
    ranking_tie_weight: float = 1.0
    # > 0: copies also rank below other photos' clean views (README.md beside this file: no gain)
    ranking_cross_weight: float = 0.0
    clip_grad: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        # A photograph both split and train-only could be trained on and held out at once.
        both = set(self.packages) & set(self.train_only_packages)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is split already (--packages)")

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
            stem_init=self.stem_init,
            ranking_weight=self.ranking_weight,
            ranking_margin=self.ranking_margin,
            ranking_tie_weight=self.ranking_tie_weight,
            ranking_cross_weight=self.ranking_cross_weight,
            flip=False,  # the groups mirror their views themselves
            explore_epochs=min(max(1, round(self.explore_share * self.epochs)), self.epochs - 1),
            seed=self.seed,
            device=device,
            threads=threads,
            loader_workers=workers,
            checkpoint_dir=str(work / "run"),
            resume=resume,
        )


def split_photos(names: list[str], recipe: Recipe) -> dict[str, list[str]]:
    """Whole photographs to train, validate (pick the epoch) and test on, by a seeded shuffle of their names."""
    if len(names) < recipe.val_photos + recipe.test_photos + 2:
        raise EatCurateError(f"only {len(names)} photographs: too few to hold any out")
    shuffled = sorted(names)
    random.Random(recipe.split_seed).shuffle(shuffled)
    test = sorted(shuffled[: recipe.test_photos])
    val = sorted(shuffled[recipe.test_photos : recipe.test_photos + recipe.val_photos])
    train = sorted(shuffled[recipe.test_photos + recipe.val_photos :])
    return {"train": train, "val": val, "test": test}


def split_files(files: Sequence[PhotoFile], recipe: Recipe) -> dict[str, list[str]]:
    """:func:`split_photos` of the photographs of ``recipe.packages``; those of its train-only packages train."""
    splits = split_photos([photo.name for photo in files if photo.package in recipe.packages], recipe)
    extra = [photo.name for photo in files if photo.package in recipe.train_only_packages]
    return {**splits, "train": sorted([*splits["train"], *extra])}


@dataclass
class DefectTrainingData:
    """The trainer's data (a ``training.trainer.TrainingSource``): generated defects of source photos."""

    train: list[SourcePhoto]
    val: list[SourcePhoto]
    groups_per_epoch: int
    plan: GroupPlan
    description: str
    curriculum: list[CurriculumStage] = field(default_factory=list)
    target: str = "votes"

    def datasets(self, config: TrainConfig, image_size: int) -> DataSets:
        sizes = [photo.image.size for photo in self.val]
        return DataSets(
            DegradedGroups(self.train, self.groups_per_epoch, image_size, self.plan, config.seed, self.curriculum),
            DegradedImages(self.val, validation_samples(sizes), image_size),
            DegradedImages([], [], image_size),  # the held-out figures are measured after training
        )

    def describe(self) -> str:
        return self.description

    def summary(self) -> dict:
        return {
            "format": "generated defects",
            "split": "whole photographs held out (seeded)",
            "sizes": {"train_photos": len(self.train), "val_photos": len(self.val)},
            "dropped": {},
            "groups_per_epoch": self.groups_per_epoch,
            "group_size": self.plan.size,
            "curriculum": [asdict(stage) for stage in self.curriculum],
        }


def round_to_float16(model: torch.nn.Module) -> None:
    """Make the weights exactly what a float16 safetensors file gives back, so figures are of the shipped model."""
    state = {
        key: value.to(torch.float16).to(value.dtype) if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(state)


def load_photos(
    recipe: Recipe, cache: Path, progress: bool = True, log=tqdm.write
) -> tuple[list[PhotoFile], dict[str, list[str]], dict[str, SourcePhoto]]:
    """The photographs (fetched into ``cache`` if needed), their split, and each one decoded once."""
    packages = (*recipe.packages, *recipe.train_only_packages)
    files = select_photographs(fetch_debian_wallpapers(cache, packages), packages)
    splits = split_files(files, recipe)
    log(f"{len(files)} photographs: train {len(splits['train'])}, val {', '.join(splits['val'])}, "
        f"test {', '.join(splits['test'])}")
    decoded = {
        photo.name: SourcePhoto(photo.name, load_photo(photo, recipe.source_short_side))
        for photo in tqdm(files, desc="decoding photos", disable=not progress, leave=False)
    }
    return files, splits, decoded


def training_precision(device: torch.device) -> str:
    """bf16 where it is fast (GPUs, CPUs with AVX512-BF16 or AMX: ~2.4x fp32), fp32 elsewhere (emulated bf16 crawls)."""
    return "bf16" if resolve_dtype("auto", device) == torch.bfloat16 else "fp32"


def recipe_record(recipe: Recipe, result: TrainResult, device: torch.device, precision: str) -> dict:
    """The settings and the run's facts, for the card."""
    images = sum(record.train_images for record in result.history)
    return {
        **asdict(recipe),
        "command": "python -m training.recipes.default_model --cache CACHE --out OUT",
        "best_epoch": result.best_epoch,
        # From the epochs' own timings (training and validation), so a resumed run reports the whole run.
        "train_minutes": round(sum(record.seconds for record in result.history) / 60, 1),
        "train_images": images,
        "train_images_per_s": round(images / sum(r.train_images / r.images_per_s for r in result.history), 1),
        "device": str(device),
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
    }


def run_recipe(
    recipe: Recipe,
    cache: Path,
    out: Path,
    work: Path,
    device: str = "auto",
    threads: int | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: bool = True,
    log=tqdm.write,
) -> tuple[DefectReport, Path]:
    """Train, measure and write the built-in model; returns the held-out report and the model folder."""
    validate_model_name(out.name)
    torch_device = resolve_device(device)
    files, splits, decoded = load_photos(recipe, cache, progress, log)
    data = DefectTrainingData(
        train=[decoded[name] for name in splits["train"]],
        val=[decoded[name] for name in splits["val"]],
        groups_per_epoch=recipe.groups_per_epoch,
        plan=recipe.group,
        curriculum=recipe.curriculum_stages(),
        description=f"{len(splits['train'])} real photographs with generated defects (see extra.description)",
    )
    precision = training_precision(torch_device)
    config = recipe.train_config(work, device, precision, threads, workers, resume)
    if config.threads:
        torch.set_num_threads(config.threads)
    trainer = Trainer(config, ModelStore(work / "store"), data, device=torch_device, progress=progress, log=log,
                      overwrite=True)
    result = trainer.run()

    model = trainer.module.to(torch_device).eval()
    model.set_steering(trainer.schedule.exploit)  # as it will score
    round_to_float16(model)
    test_photos = [decoded[name] for name in splits["test"]]
    report = evaluate_defects(model, test_photos, torch_device, workers=workers, progress=progress)
    record = recipe_record(recipe, result, torch_device, precision)
    card = build_card(out.name, recipe.preset, result.card, report, files, splits, package_versions(cache), record)
    ModelStore(out.parent).save(model.cpu(), card, overwrite=True, weights_dtype=torch.float16)
    (work / "report.md").write_text(report.table() + "\n")
    (work / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report, out


def with_defect_weights(recipe: Recipe, text: str) -> Recipe:
    """``recipe`` drawing the types ``text`` names (``tilt=3,noise=0.5``) that much more or less often."""
    weights = []
    for item in text.split(","):
        name, _, weight = item.partition("=")
        try:
            weights.append((name.strip(), float(weight)))
        except ValueError:
            raise click.BadParameter(f"{item!r} is not NAME=WEIGHT (e.g. tilt=3)", param_hint="--defect-weights") from None
    trained = set(recipe.group.defects).union(*(defects for _, defects in recipe.curriculum))
    never_drawn = [name for name, _ in weights if name in DEFECTS and name not in trained]
    if never_drawn:
        raise click.BadParameter(f"{', '.join(never_drawn)} is not among the defect types trained "
                                 f"({', '.join(sorted(trained))})", param_hint="--defect-weights")
    try:
        return replace(recipe, group=replace(recipe.group, defect_weights=tuple(weights)))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--defect-weights") from None


def known_packages(text: str, option: str) -> tuple[str, ...]:
    """The package names in ``text`` (comma-separated), each one the recipe knows photographs of."""
    names = tuple(text.split(","))
    unknown = sorted(set(names) - set(KNOWN_PHOTO_PACKAGES))
    if unknown:
        raise click.BadParameter(f"unknown package {', '.join(unknown)}; known: {', '.join(KNOWN_PHOTO_PACKAGES)}",
                                 param_hint=option)
    return names


@click.command()
@cache_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The model folder to write (model.safetensors + card.json), e.g. "
                   "eat_curate/model/builtin/culling-nano. Replaced if it exists.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/default-model"),
              show_default=True, help="Checkpoints, the scratch model store and the report.")
@device_option
@threads_option
@click.option("--workers", type=click.IntRange(0), default=1, show_default=True,
              help="Processes generating training pictures (more on a GPU machine).")
@click.option("--epochs", type=click.IntRange(2), default=None, help="Override the recipe's epochs (quick trials).")
@click.option("--groups-per-epoch", type=click.IntRange(1), default=None,
              help="Override the recipe's groups per epoch (quick trials).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Override the recipe's peak learning rate (trials).")
@click.option("--ranking-margin", type=click.FloatRange(min=0), default=None,
              help="Override the recipe's ranking margin, in units of the target gap (trials).")
@click.option("--packages", default=None, metavar="NAME,...",
              help=f"Take the photographs of these Debian packages, or 'all' of the shipped model's (trials; "
                   f"known: {', '.join(KNOWN_PHOTO_PACKAGES)}). Default: all ({', '.join(PHOTO_PACKAGES)}).")
@click.option("--train-packages", default=None, metavar="NAME,...",
              help="Also train on these packages' photographs, never holding one out: the others split as "
                   "without them, so the held-out photographs stay those of earlier models (trials).")
@click.option("--test-photos", type=click.IntRange(1), default=None,
              help="Override how many whole photographs are held out for the final figures (trials).")
@click.option("--defects", default=None, metavar="NAME,...",
              help="Train on these defect types only (trials: does one type learn on its own?); "
                   "the held-out table still measures every type.")
@click.option("--defect-weights", default=None, metavar="NAME=WEIGHT,...",
              help="Draw these defect types WEIGHT times as often as the others, which weigh 1 "
                   "(trials: e.g. tilt=3 gives tilt three times the ladders and variants of any other type).")
@click.option("--tilt-same-frame", is_flag=True,
              help="Cut a group that shows tilt, clean view and all, from the rectangle that still fits turned "
                   "by the full tilt, so tilted copies differ by the turn alone, not also by a zoom (trials).")
@click.option("--crop-shift", type=click.FloatRange(0, 1), default=None,
              help="Override how far clean crops may move off the photo's centre, as a share of the room they "
                   "leave (trials; 1: anywhere, as the recipe does; 0: centred).")
@click.option("--stem-init", type=click.Choice(STEM_INITS), default=None,
              help="Override how the patch embedding starts (trials; dct: the recipe's DCT filters, each whitened "
                   "to its own spread; dct_shared: one gain for a colour's detail filters, so oblique detail "
                   "is not favoured; random).")
@click.option("--seed", type=click.IntRange(0), default=None,
              help="Override the recipe's seed: other starting weights and training pictures, the same split "
                   "(trials: how much of a difference is the run's, not the recipe's).")
@click.option("--resume", is_flag=True,
              help="Continue the run whose checkpoint is in --work (a finished run: measure and write OUT again).")
def main(cache: Path, out: Path, work: Path, device: str, threads: int | None, workers: int,
         epochs: int | None, groups_per_epoch: int | None, lr: float | None, ranking_margin: float | None,
         packages: str | None, train_packages: str | None, test_photos: int | None, defects: str | None,
         defect_weights: str | None, tilt_same_frame: bool, crop_shift: float | None, stem_init: str | None,
         seed: int | None, resume: bool) -> None:
    """Train eat-curate's built-in model on real photographs with generated defects, and write it to OUT.

    Prints the validation line of every epoch and, at the end, the held-out
    figures per defect type (also written to WORK/report.md and into the card).
    """
    overrides = {"epochs": epochs, "groups_per_epoch": groups_per_epoch, "lr": lr, "ranking_margin": ranking_margin,
                 "test_photos": test_photos, "stem_init": stem_init, "seed": seed}
    if packages is not None:
        overrides["packages"] = PHOTO_PACKAGES if packages == "all" else known_packages(packages, "--packages")
    if train_packages is not None:
        overrides["train_only_packages"] = known_packages(train_packages, "--train-packages")
    try:
        recipe = replace(Recipe(), **{key: value for key, value in overrides.items() if value is not None})
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--train-packages") from None
    if crop_shift is not None:
        recipe = replace(recipe, group=replace(recipe.group, crop_shift=crop_shift))
    if tilt_same_frame:
        recipe = replace(recipe, group=replace(recipe.group, tilt_same_frame=True))
    if defects is not None:
        try:
            recipe = replace(recipe, group=replace(recipe.group, defects=tuple(defects.split(","))), curriculum=())
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--defects") from None
    if defect_weights is not None:
        recipe = with_defect_weights(recipe, defect_weights)
    try:
        report, folder = run_recipe(recipe, cache, out, work, device, threads, workers, resume)
    except EatCurateError as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.table())
    if report.failures:
        click.echo("targets missed: " + "; ".join(report.failures))
    click.echo(f"wrote {folder}")


if __name__ == "__main__":
    sys.exit(main())
