"""Measuring a recipe model again after the evaluation changed: new figures in its card, the same weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MICRO_PRESET

from eat_curate.model.checkpoint import load_model, read_card
from eat_curate.model.model_store import BUILTIN_DIR, ModelStore
from eat_curate.samples import landscape
from training.degradation_eval import DefectReport
from training.degraded_data import SourcePhoto
from training.recipes import remeasure
from training.recipes.model_card import remeasured_card

SHIPPED = read_card(BUILTIN_DIR / "culling-nano")


def test_a_card_s_figures_read_back_rebuild_the_card_the_recipe_wrote():
    report = DefectReport.from_dict(SHIPPED.metrics["held_out_defects"])
    assert report.to_dict() == SHIPPED.metrics["held_out_defects"]
    rebuilt = remeasured_card(SHIPPED, report, "2026-11-28T00:00:00+00:00")
    assert rebuilt.extra["description"] == SHIPPED.extra["description"]
    assert rebuilt.scope == SHIPPED.scope and rebuilt.metrics == SHIPPED.metrics
    assert rebuilt.extra["held_out_measured"] == "2026-11-28T00:00:00+00:00"
    assert rebuilt.sha256 == SHIPPED.sha256 and rebuilt.created == SHIPPED.created


def test_only_the_types_whose_figures_moved_are_reported_as_changed():
    before = DefectReport.from_dict(SHIPPED.metrics["held_out_defects"])
    after = DefectReport.from_dict(SHIPPED.metrics["held_out_defects"])
    tilt = next(row for row in after.defects if row.defect == "tilt")
    after.defects[after.defects.index(tilt)] = replace(tilt, srcc=tilt.srcc - 0.1)
    assert remeasure.changed_rows(before, before) == []
    pairwise = f"{tilt.pairwise_accuracy:.3f}"
    assert remeasure.changed_rows(before, after) == [
        f"tilt: pairwise {pairwise} -> {pairwise}, SRCC {tilt.srcc:.3f} -> {tilt.srcc - 0.1:.3f}"
    ]


@pytest.fixture
def recipe_model(tmp_path: Path) -> Path:
    """An untrained micro model whose card claims the shipped model's photographs, recipe and figures."""
    store = ModelStore(tmp_path / "models")
    store.init(MICRO_PRESET, "candidate", seed=0)
    folder = store.resolve("candidate")
    card = json.loads((folder / "card.json").read_text())
    card["metrics"]["held_out_defects"] = SHIPPED.metrics["held_out_defects"]
    card["extra"].update(photographs=SHIPPED.extra["photographs"], recipe=SHIPPED.extra["recipe"])
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_the_command_measures_the_held_out_photos_again_and_rewrites_the_figures_not_the_weights(
    recipe_model, monkeypatch, tmp_path
):
    asked = []

    def photos(names, cache):  # the wallpaper packages are not at hand in tests: a drawn scene stands in
        asked.append(list(names))
        return [SourcePhoto(names[0], landscape(0, size=(320, 240)))]

    monkeypatch.setattr(remeasure, "load_named_photos", photos)
    sha256 = read_card(recipe_model).sha256
    result = CliRunner().invoke(remeasure.main, [str(recipe_model), "--cache", str(tmp_path / "cache")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    held_out = sorted(photo["name"] for photo in SHIPPED.extra["photographs"] if photo["split"] == "test")
    assert asked == [held_out]
    card = load_model(recipe_model).card  # the weights still match the card
    assert card.sha256 == sha256
    figures = card.metrics["held_out_defects"]
    assert figures["photos"] == [held_out[0]] and figures != SHIPPED.metrics["held_out_defects"]
    assert "held_out_measured" in card.extra
    assert card.extra["description"] != SHIPPED.extra["description"]
    assert "changed: gaussian_blur: pairwise 1.000 -> " in result.output


def test_a_model_whose_card_lists_no_photographs_is_refused(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.init(MICRO_PRESET, "imported", seed=0)
    result = CliRunner().invoke(remeasure.main, [str(store.resolve("imported")), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "not a recipe model" in result.output
    assert not (tmp_path / "c").exists()
