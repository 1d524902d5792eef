"""Measure a recipe model again on its own held-out photographs, with the current evaluation, and update its card.

    python -m training.recipes.remeasure eat_curate/model/builtin/culling-nano

A recipe run writes its held-out figures into the model's card as the
evaluation of the day measured them. When the evaluation changes (a probe
made fairer, a figure added), this brings the card up to date without
training again: the same weights, the same held-out photographs (those the
card lists as ``test``), the current :func:`training.degradation_eval.evaluate_defects`.
The card's held-out figures, its scope line (which ``score`` prints) and its
description are rebuilt; the weights and everything else stay as they
were, and ``extra.held_out_measured`` records when. The rows that changed
are printed.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import torch

from eat_curate.errors import EatCurateError
from eat_curate.model.checkpoint import load_model, write_card
from eat_curate.scoring.predictor import resolve_device
from training.degradation_eval import DefectReport, evaluate_defects
from training.recipes.compare_models import load_named_photos
from training.recipes.model_card import listed_splits, remeasured_card
from training.recipes.options import cache_option, device_option, threads_option


def held_out_photos(photographs: list[dict]) -> list[str]:
    """The names of the photographs a recipe model's card lists as held out."""
    names = listed_splits(photographs)["test"]
    if not names:
        raise EatCurateError("the card lists no held-out photograph (split 'test') to measure on")
    return names


def changed_rows(before: DefectReport, after: DefectReport) -> list[str]:
    """One line per defect type whose pairwise accuracy or SRCC moved (to 3 decimals), old figures first."""
    old_rows = {row.defect: row for row in before.defects}
    lines = []
    for row in after.defects:
        old = old_rows.get(row.defect)
        if old is None:
            lines.append(f"{row.defect}: new, pairwise {row.pairwise_accuracy:.3f}, SRCC {row.srcc:.3f}")
        elif f"{old.pairwise_accuracy:.3f} {old.srcc:.3f}" != f"{row.pairwise_accuracy:.3f} {row.srcc:.3f}":
            lines.append(f"{row.defect}: pairwise {old.pairwise_accuracy:.3f} -> {row.pairwise_accuracy:.3f}, "
                         f"SRCC {old.srcc:.3f} -> {row.srcc:.3f}")
    return lines


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@cache_option
@device_option
@threads_option
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Processes rendering the evaluation pictures.")
def main(model: Path, cache: Path, device: str, threads: int | None, workers: int) -> None:
    """Measure MODEL (a recipe model's folder) again on its held-out photographs and rewrite its card's figures.

    The weights are not touched; the card's held-out figures, scope line and
    description are replaced by what the current evaluation measures.
    """
    if threads:
        torch.set_num_threads(threads)
    try:
        loaded = load_model(model)
        card = loaded.card
        if "photographs" not in card.extra or "recipe" not in card.extra:
            raise EatCurateError(f"model {card.name!r} is not a recipe model: its card lists no photographs or recipe")
        names = held_out_photos(card.extra["photographs"])
        click.echo(f"{len(names)} held-out photographs: {', '.join(names)}")
        photos = load_named_photos(names, cache)
        torch_device = resolve_device(device)
        report = evaluate_defects(loaded.model.to(torch_device).eval(), photos, torch_device, workers=workers)
    except EatCurateError as error:
        raise click.ClickException(str(error)) from None
    before = card.metrics.get("held_out_defects")
    changes = changed_rows(DefectReport.from_dict(before), report) if before else []
    measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_card(remeasured_card(card, report, measured_at), model)
    click.echo(report.table())
    click.echo("changed: " + ("; ".join(changes) if changes else "no defect type's pairwise accuracy or SRCC"))
    click.echo(f"wrote {model / 'card.json'}")


if __name__ == "__main__":
    sys.exit(main())
