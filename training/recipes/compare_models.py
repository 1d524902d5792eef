"""Compare candidates for the built-in model on photographs none of them trained on.

    python -m training.recipes.compare_models eat_curate/model/builtin/culling-nano OUT/culling-nano

The held-out figures a recipe run prints come from its own six test
photographs, which differ from run to run when the photographs or the
split change, and six photographs say little. This measures every model
given on the same photographs: by default every photograph the recipe
knows (:data:`training.recipes.wallpaper_photos.PHOTOGRAPHS`, Lomiri's and
LXQt's included) that no model's card lists as a training photo, which for
models of the default recipe is 19 photographs (8 where one of them also
trained on LXQt's 11; 31 for the first recipe's, which trained on the
desktops' 17). Each model gets
:func:`training.degradation_eval.evaluate_defects`; the summary has one
row per model: mean pairwise accuracy and SRCC over the defect types (SRCC
pooled over the photographs, the target's, and within each photograph), the
stability figures, the clean views' spread, and the types caught.
``--photos trained`` measures on the photographs every model trained on
instead: a model steady there but not on new photographs fits and does not
generalise.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from eat_curate.benchmarks.photos import fetch_debian_wallpapers
from eat_curate.errors import EatCurateError
from eat_curate.model.checkpoint import ModelCard, load_model, read_card
from eat_curate.scoring.predictor import resolve_device
from training.degradation_eval import DefectReport, evaluate_defects
from training.degraded_data import SourcePhoto
from training.recipes.default_model import Recipe
from training.recipes.model_card import caught_and_missed, listed_splits
from training.recipes.options import cache_option, device_option, threads_option
from training.recipes.wallpaper_photos import KNOWN_PHOTO_PACKAGES, PHOTOGRAPHS, load_photo, select_photographs


def trained_photos(card: ModelCard) -> set[str]:
    """The photographs a recipe model trained on, as its card lists them."""
    photos = card.extra.get("photographs")
    if photos is None:
        raise EatCurateError(
            f"model {card.name!r}: its card does not list the photographs it trained on "
            "(not a recipe model?); name the photographs to measure on with --photos"
        )
    return set(listed_splits(photos)["train"])


def unseen_photos(cards: Iterable[ModelCard], known: Sequence[str] = tuple(PHOTOGRAPHS)) -> list[str]:
    """The ``known`` photographs that no card's model trained on, in ``known``'s order."""
    seen = set().union(*(trained_photos(card) for card in cards))
    unseen = [name for name in known if name not in seen]
    if not unseen:
        raise EatCurateError("the models trained on every known photograph between them: none is left to measure on")
    return unseen


def photos_all_trained_on(cards: Iterable[ModelCard], known: Sequence[str] = tuple(PHOTOGRAPHS)) -> list[str]:
    """The ``known`` photographs that every card's model trained on: how steady the models are where they fit."""
    shared = set.intersection(*(trained_photos(card) for card in cards))
    trained = [name for name in known if name in shared]
    if not trained:
        raise EatCurateError("the models share no training photograph")
    return trained


def load_named_photos(names: Sequence[str], cache: Path) -> list[SourcePhoto]:
    """The named photographs, fetched into ``cache`` (only the packages holding them) and decoded as the recipe does."""
    unknown = [name for name in names if name not in PHOTOGRAPHS]
    if unknown:
        raise EatCurateError(f"unknown photograph {', '.join(unknown)}; known: {', '.join(PHOTOGRAPHS)}")
    packages = tuple(package for package in KNOWN_PHOTO_PACKAGES if package in {PHOTOGRAPHS[name] for name in names})
    files = {photo.name: photo for photo in select_photographs(fetch_debian_wallpapers(cache, packages), packages)}
    return [SourcePhoto(name, load_photo(files[name], Recipe.source_short_side)) for name in names]


def mean_pairwise_accuracy(report: DefectReport) -> float:
    return float(np.mean([row.pairwise_accuracy for row in report.defects]))


def _mean_correlation(values: Iterable[float]) -> float:
    """Mean over the defect types; a type whose scores never moved (correlation undefined) counts as 0."""
    return float(np.mean([0.0 if math.isnan(value) else value for value in values]))


def mean_srcc(report: DefectReport) -> float:
    return _mean_correlation(row.srcc for row in report.defects)


def mean_srcc_within_photo(report: DefectReport) -> float:
    """The same for the SRCC within each photo's views."""
    return _mean_correlation(row.srcc_within_photo for row in report.defects)


def summary_table(reports: Sequence[tuple[str, DefectReport]]) -> str:
    """A Markdown table, one row per model: means over the defect types, stability, clean spread, types caught."""
    lines = [
        "| model | pairwise (mean) | SRCC (mean) | SRCC within a photo (mean) | JPEG q95 (photo) | mirror "
        "| JPEG q95 (256 px view) | clean views | types caught (pairwise >= 0.9) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, report in reports:
        caught, _ = caught_and_missed(report)
        lines.append(
            f"| {name} | {mean_pairwise_accuracy(report):.3f} | {mean_srcc(report):.3f} "
            f"| {mean_srcc_within_photo(report):.3f} "
            f"| {report.stability.photo_jpeg95_mean:.3f} | {report.stability.mirror_mean:.3f} "
            f"| {report.stability.view_jpeg95_mean:.3f} "
            f"| {report.clean_mean:.2f} +- {report.clean_std:.2f} | {len(caught)}: {', '.join(caught) or '-'} |"
        )
    return "\n".join(lines)


def compare_models(
    folders: Sequence[Path],
    photos: list[SourcePhoto],
    device: torch.device,
    workers: int = 0,
    progress: bool = True,
) -> list[tuple[str, DefectReport]]:
    """Each model folder's held-out report on ``photos``, scored as the model scores (its card's steering)."""
    reports = []
    for folder in tqdm(folders, desc="models", disable=not progress or len(folders) < 2):
        model = load_model(folder).model.to(device).eval()
        reports.append((str(folder), evaluate_defects(model, photos, device, workers=workers, progress=progress)))
    return reports


@click.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--photos", "photo_names", default="unseen", show_default=True, metavar="unseen|trained|NAME,...",
              help="The photographs to measure on: 'unseen' takes every known photograph that no model's card "
                   "lists as a training photo, 'trained' those every model trained on (to tell a model that "
                   "does not fit from one that does not generalise).")
@cache_option
@device_option
@threads_option
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Processes rendering the evaluation pictures.")
@click.option("--tables/--no-tables", default=True, show_default=True,
              help="Print each model's per-defect table before the summary.")
def main(models: tuple[Path, ...], photo_names: str, cache: Path, device: str, threads: int | None,
         workers: int, tables: bool) -> None:
    """Measure built-in-model candidates (model folders) on the same photographs and print a summary.

    Every model gets the recipe's held-out evaluation (each defect type at
    four strengths, JPEG q95 re-encoding, mirroring) on the same
    photographs; the summary compares the means.
    """
    if threads:
        torch.set_num_threads(threads)
    try:
        if photo_names in ("unseen", "trained"):
            cards = [read_card(folder) for folder in models]
            names = unseen_photos(cards) if photo_names == "unseen" else photos_all_trained_on(cards)
        else:
            names = [name for name in photo_names.split(",") if name]
        click.echo(f"{len(names)} photographs: {', '.join(names)}")
        photos = load_named_photos(names, cache)
        reports = compare_models(models, photos, resolve_device(device), workers)
    except EatCurateError as error:
        raise click.ClickException(str(error)) from None
    if tables:
        for name, report in reports:
            click.echo(f"\n## {name}\n\n{report.table()}")
    click.echo("\n" + summary_table(reports))


if __name__ == "__main__":
    sys.exit(main())
