"""Comparing built-in-model candidates: on the photographs none of them trained on, one summary row each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from eat_curate.errors import EatCurateError
from eat_curate.model.checkpoint import read_card
from eat_curate.model.model_store import ModelStore
from eat_curate.samples import landscape
from conftest import MICRO_PRESET
from training.degradation_eval import evaluation_probes, summarise
from training.degradation_targets import CLEAN_MEAN, target_mean
from training.degradations import DEFECTS
from training.degraded_data import SourcePhoto
from training.recipes import compare_models as compare
from training.recipes.wallpaper_photos import PHOTOGRAPHS


def recipe_model(store: ModelStore, name: str, splits: dict[str, list[str]]) -> Path:
    """An untrained micro model whose card lists its photographs by split, as a recipe run's card does."""
    store.init(MICRO_PRESET, name, seed=0)
    folder = store.resolve(name)
    card_file = folder / "card.json"
    card = json.loads(card_file.read_text())
    card["extra"]["photographs"] = [{"name": photo, "split": split} for split, names in splits.items() for photo in names]
    card_file.write_text(json.dumps(card))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_unseen_photos_are_the_known_ones_no_model_trained_on(store):
    first = recipe_model(store, "first", {"train": ["Aqua", "Dune"], "val": ["Kite"], "test": ["Wood"]})
    second = recipe_model(store, "second", {"train": ["Dune", "Storm"], "test": ["Aqua"]})
    unseen = compare.unseen_photos([read_card(first), read_card(second)])
    assert unseen == [name for name in PHOTOGRAPHS if name not in {"Aqua", "Dune", "Storm"}]
    assert "Kite" in unseen and "Wood" in unseen  # followed or held out, never trained on


def test_a_card_that_does_not_list_its_photographs_is_refused_with_the_way_out(store):
    store.init(MICRO_PRESET, "imported", seed=0)
    with pytest.raises(EatCurateError, match="does not list the photographs.*--photos"):
        compare.unseen_photos([read_card(store.resolve("imported"))])


def test_models_that_trained_on_every_photo_leave_nothing_to_measure(store):
    everything = recipe_model(store, "all", {"train": list(PHOTOGRAPHS)})
    with pytest.raises(EatCurateError, match="none is left"):
        compare.unseen_photos([read_card(everything)])


def test_trained_photos_are_those_every_model_trained_on(store):
    first = recipe_model(store, "first", {"train": ["Storm", "Aqua", "Dune"], "test": ["Wood"]})
    second = recipe_model(store, "second", {"train": ["Dune", "Storm"], "val": ["Aqua"]})
    trained = compare.photos_all_trained_on([read_card(first), read_card(second)])
    assert trained == [name for name in PHOTOGRAPHS if name in {"Dune", "Storm"}]
    third = recipe_model(store, "third", {"train": ["Wood"]})
    with pytest.raises(EatCurateError, match="share no training photograph"):
        compare.photos_all_trained_on([read_card(first), read_card(third)])


def test_unknown_photographs_are_named_before_anything_is_fetched(tmp_path):
    with pytest.raises(EatCurateError, match="unknown photograph Nope"):
        compare.load_named_photos(["Aqua", "Nope"], tmp_path / "never-created")
    assert not (tmp_path / "never-created").exists()


def test_the_summary_row_gives_the_means_over_the_types_and_the_types_caught():
    sizes = [(480, 320)]
    probes = evaluation_probes(sizes)
    perfect = np.array([target_mean([p.strength]) if p.kind == "defect" else CLEAN_MEAN for p in probes])
    noise_blind = perfect.copy()
    noise_blind[[i for i, p in enumerate(probes) if p.defect == "noise"]] = CLEAN_MEAN  # ties: never below clean
    reports = [("perfect", summarise(probes, perfect, ["scene"])), ("blind", summarise(probes, noise_blind, ["scene"]))]
    header, rule, perfect_row, blind_row = compare.summary_table(reports).splitlines()
    assert perfect_row.startswith("| perfect | 1.000 | 1.000 | 1.000 | 0.000 | 0.000 | 0.000 | 8.00 +- 0.00 | 11: gaussian_blur,")
    blind_accuracy = (len(DEFECTS) - 1) / len(DEFECTS)  # noise: no pair won
    # noise's SRCC, pooled and within each view: undefined (its scores never move), counted as 0
    assert blind_row.startswith(f"| blind | {blind_accuracy:.3f} | {blind_accuracy:.3f} | {blind_accuracy:.3f} |")
    assert "10: " in blind_row and "noise" not in blind_row


def test_the_command_measures_every_model_on_the_same_photos(store, monkeypatch, tmp_path):
    first = recipe_model(store, "first", {"train": ["Dune"]})
    second = recipe_model(store, "second", {"train": ["Storm"]})
    asked = []

    def photos(names, cache):  # the wallpaper packages are not at hand in tests: a drawn scene stands in
        asked.append(list(names))
        return [SourcePhoto(name, landscape(i, size=(320, 240))) for i, name in enumerate(names[:1])]

    monkeypatch.setattr(compare, "load_named_photos", photos)
    result = CliRunner().invoke(compare.main, [str(first), str(second), "--no-tables", "--cache", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert asked == [[name for name in PHOTOGRAPHS if name not in {"Dune", "Storm"}]]
    rows = [line for line in result.output.splitlines() if line.startswith(f"| {store.root}")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {first}", f"| {second}"]
    # The same untrained weights (seed 0) on the same photo: the same figures.
    assert rows[0].split(" | ")[1:] == rows[1].split(" | ")[1:]


def test_the_command_refuses_an_unknown_photograph_with_a_clear_message(store, tmp_path):
    model = recipe_model(store, "first", {"train": ["Dune"]})
    result = CliRunner().invoke(compare.main, [str(model), "--photos", "Aqua,Nope", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "unknown photograph Nope" in result.output
