"""The recipe of eat-curate's built-in model: a nano EAT trained on real photos with generated defects.

    python -m training.recipes.default_model [--config training/recipes/culling-nano.yaml] \\
        --cache .cache/wallpapers --out OUT/culling-nano [--device cuda] [--resume]

Every setting is in the config file (:mod:`training.recipes.recipe_config`);
the options here say only where and how it runs.

1. Fetch the config's Debian wallpaper packages into ``--cache`` (``apt-get
   download`` + ``dpkg -x``; reused when present) and keep the real
   photographs (:mod:`training.recipes.wallpaper_photos`), one file per picture.
2. Hold out whole photographs: a seeded few validated after every epoch
   (printed), a few more for the reported figures; train on the rest.
3. Train with the project's trainer: groups of a clean view, a harmless copy
   of it (mirrored and/or re-encoded) and its degraded versions, mostly one
   defect at rising strengths (:mod:`training.recipes.defect_datasets`),
   taught in a curriculum: the two blurs alone, then with noise and JPEG
   blocking, then (from 45% of the epochs) every defect type; a pairwise
   ranking loss within each group leads, EMD to the target distribution
   (:mod:`training.recipes.defect_targets`) at half the ranking loss's
   weight anchors the scale; the patch embedding starts as a whitened DCT
   filter bank (:mod:`training.recipes.dct_stem`); EAT's explore/exploit
   steering schedule, cosine learning rate to 0, bf16 only where it is fast.
   Checkpoints every epoch in ``--work``; ``--resume`` continues a stopped run.
4. Keep the last epoch (two validation photos cannot tell good epochs apart:
   the one they picked measured worse on the held-out photos than the last),
   round its weights to float16 (as they ship), measure them on the
   held-out photos (:mod:`training.recipes.defect_eval`), print the table and
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import click
import torch
from tqdm import tqdm

from eat_curate.errors import EatCurateError
from eat_curate.model.card import validate_model_name
from eat_curate.model.model_store import ModelStore
from eat_curate.samples.debian_wallpapers import fetch_debian_wallpapers
from eat_curate.scoring.predictor import resolve_device, resolve_dtype
from training.config import TrainConfig
from training.recipes.dct_stem import start_stem_as_whitened_dct
from training.recipes.defect_datasets import CurriculumStage, DegradedGroups, DegradedImages, GroupPlan, SourcePhoto
from training.recipes.defect_eval import DefectReport, evaluate_defects, validation_samples
from training.recipes.model_card import build_card
from training.recipes.recipe_config import DEFAULT_CONFIG, Recipe, read_recipe
from training.recipes.wallpaper_photos import PhotoFile, load_photo, package_versions, select_photographs
from training.trainer import Trainer, TrainResult
from training.training_data import DataSets

COMMAND = "python -m training.recipes.default_model --config CONFIG --cache CACHE --out OUT"


def split_photos(names: list[str], recipe: Recipe) -> dict[str, list[str]]:
    """Whole photographs to train, validate (followed each epoch) and test on, by a seeded shuffle of their names."""
    if len(names) < recipe.val_photos + recipe.test_photos + 2:
        raise EatCurateError(f"only {len(names)} photographs: too few to hold any out")
    shuffled = sorted(names)
    random.Random(recipe.split_seed).shuffle(shuffled)
    test = sorted(shuffled[: recipe.test_photos])
    val = sorted(shuffled[recipe.test_photos : recipe.test_photos + recipe.val_photos])
    train = sorted(shuffled[recipe.test_photos + recipe.val_photos :])
    return {"train": train, "val": val, "test": test}


@dataclass
class DefectTrainingData:
    """The trainer's data (a ``training.training_data.TrainingSource``): generated defects of source photos."""

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
    recipe: Recipe, cache: Path, progress: bool = True, log: Callable[[str], None] = tqdm.write
) -> tuple[list[PhotoFile], dict[str, list[str]], dict[str, SourcePhoto]]:
    """The photographs (fetched into ``cache`` if needed), their split, and each one decoded once."""
    files = select_photographs(fetch_debian_wallpapers(cache, recipe.packages), recipe.packages)
    splits = split_photos([photo.name for photo in files], recipe)
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
        "command": COMMAND,
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
    log: Callable[[str], None] = tqdm.write,
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
    start = partial(start_stem_as_whitened_dct, seed=recipe.seed) if recipe.stem_init == "dct" else None
    trainer = Trainer(config, ModelStore(work / "store"), data, device=torch_device, progress=progress, log=log,
                      overwrite=True, init_fresh_model=start)
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


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CONFIG,
              show_default="training/recipes/culling-nano.yaml",
              help="The recipe: a YAML file of every setting (the shipped model's by default).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/wallpapers"),
              show_default=True, help="Where the wallpaper packages are downloaded and unpacked (reused).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The model folder to write (model.safetensors + card.json), e.g. "
                   "eat_curate/model/builtin/culling-nano. Replaced if it exists.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/default-model"),
              show_default=True, help="Checkpoints, the scratch model store and the report.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda, ...")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--workers", type=click.IntRange(0), default=1, show_default=True,
              help="Processes generating training pictures (more on a GPU machine).")
@click.option("--resume", is_flag=True,
              help="Continue the run whose checkpoint is in --work (a finished run: measure and write OUT again).")
def main(config_path: Path, cache: Path, out: Path, work: Path, device: str, threads: int | None, workers: int,
         resume: bool) -> None:
    """Train eat-curate's built-in model on real photographs with generated defects, and write it to OUT.

    Prints the validation line of every epoch and, at the end, the held-out
    figures per defect type (also written to WORK/report.md and into the card).
    """
    try:
        recipe = read_recipe(config_path)
        report, folder = run_recipe(recipe, cache, out, work, device, threads, workers, resume)
    except EatCurateError as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.table())
    if report.failures:
        click.echo("targets missed: " + "; ".join(report.failures))
    click.echo(f"wrote {folder}")


if __name__ == "__main__":
    sys.exit(main())
