"""The built-in model recipe's own steps: its config file, the photo split, float16 rounding, its command line."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from eat_curate.errors import EatCurateError
from eat_curate.model import EAT
from eat_curate.model.card import read_card
from eat_curate.model.model_store import BUILTIN_DIR
from training.recipes.default_model import main, round_to_float16, split_photos
from training.recipes.defect_datasets import CurriculumStage
from training.recipes.defect_eval import DefectFigures, DefectReport, Stability
from training.recipes.defects import DEFECTS
from training.recipes.model_card import NOT_TASTE, measured_line, scope_line
from training.recipes.recipe_config import DEFAULT_CONFIG, RecipeError, read_recipe
from training.recipes.wallpaper_photos import PHOTO_PACKAGES

NAMES = [f"photo{i:02d}" for i in range(23)]
# What the card's extra.recipe holds besides the settings: facts of the run that made the model.
RUN_FACTS = {"command", "best_epoch", "train_minutes", "train_images", "train_images_per_s", "device", "precision",
             "torch_threads"}


def test_the_built_in_model_was_trained_with_the_settings_of_the_recipe_s_config_file():
    """So the command the README gives remakes the model that ships, not an older recipe's."""
    trained_with = read_card(BUILTIN_DIR / "culling-nano").extra["recipe"]
    settings = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert {key: trained_with.get(key) for key in settings} == settings
    assert set(trained_with) - set(settings) == RUN_FACTS  # and it records no setting the file lacks
    assert json.loads(json.dumps(asdict(read_recipe()))) == settings  # read as written: tuples become lists


def edited_config(tmp_path: Path, **changes) -> Path:
    """The shipped config with ``changes`` (None: the setting removed), written to a file of its own."""
    settings = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for key, value in changes.items():
        if value is None:
            del settings[key]
        else:
            settings[key] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": "3e-4"}, "lr: '3e-4' is not a float"),  # YAML 1.1 reads 3e-4 without a point as a string
        ({"seed": None}, "missing seed"),
        ({"crop_shift": 1.0}, "unknown crop_shift"),
        ({"packages": ["mate-backgrounds", "ubuntu-wallpapers"]}, "no photographs known in ubuntu-wallpapers"),
        ({"curriculum": [[0.0, ["gaussian_blur", "focus"]]]}, "curriculum: defects must be a non-empty subset"),
        ({"stem_init": "dct_shared"}, "stem_init 'dct_shared' is not one of dct, random"),
    ],
)
def test_a_config_that_is_not_a_complete_recipe_is_refused(tmp_path, changes, message):
    with pytest.raises(RecipeError, match=message):
        read_recipe(edited_config(tmp_path, **changes))


def test_a_bad_config_is_refused_before_anything_is_fetched(tmp_path):
    config = edited_config(tmp_path, packages=["ubuntu-wallpapers"])
    result = CliRunner().invoke(main, ["--config", str(config), "--cache", str(tmp_path / "cache"),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "ubuntu-wallpapers" in result.output
    assert not (tmp_path / "cache").exists()


def test_the_command_explains_itself():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in ("--config", "--cache", "--out", "--work", "--device", "--threads", "--workers", "--resume"):
        assert option in result.output
    assert "culling-nano.yaml" in result.output  # the shipped model's recipe, unless told otherwise


def test_whole_photographs_are_split_disjointly_and_the_same_way_every_time():
    recipe = read_recipe()
    splits = split_photos(NAMES, recipe)
    assert (len(splits["val"]), len(splits["test"])) == (recipe.val_photos, recipe.test_photos)
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == NAMES
    assert split_photos(list(reversed(NAMES)), recipe) == splits  # the order they were found in does not matter
    assert split_photos(NAMES, replace(recipe, split_seed=1)) != splits


def test_too_few_photographs_to_hold_any_out_is_an_error():
    with pytest.raises(EatCurateError, match="too few"):
        split_photos(NAMES[:6], read_recipe())


def test_the_shipped_model_s_recipe_takes_the_photographs_of_every_package_the_recipe_knows():
    assert read_recipe().packages == PHOTO_PACKAGES


def test_rounded_weights_are_exactly_what_a_float16_file_gives_back(micro_preset):
    model = EAT(micro_preset)
    round_to_float16(model)
    for value in model.state_dict().values():
        if value.is_floating_point():
            assert torch.equal(value, value.to(torch.float16).to(value.dtype))


def test_the_recipe_teaches_focus_first_and_every_defect_type_in_the_end():
    stages = read_recipe().curriculum_stages()
    assert stages[0] == CurriculumStage(0, ("gaussian_blur", "motion_blur"))
    assert [stage.first_epoch for stage in stages] == sorted(stage.first_epoch for stage in stages)
    assert set(stages[-1].defects) == set(DEFECTS) and stages[-1].first_epoch < 20


def test_the_recipe_keeps_its_last_epoch_after_a_quarter_of_the_epochs_exploring(tmp_path):
    config = read_recipe().train_config(tmp_path, "cpu", "fp32", threads=None, workers=0, resume=False)
    assert config.keep_epoch == "last"  # two validation photos cannot pick a better one
    assert (config.epochs, config.explore_epochs) == (20, 5)


def report_where(pairwise: dict[str, float]) -> DefectReport:
    """A held-out report: every type at pairwise accuracy 1 and SRCC 0.9 unless ``pairwise`` says otherwise."""
    rows = [DefectFigures(name, pairwise.get(name, 1.0), 20, 0.9, 100, {}) for name in DEFECTS]
    failures = [f"{name}: pairwise accuracy {value:.3f}, SRCC 0.900" for name, value in pairwise.items()]
    return DefectReport(["held-out"], rows, Stability(0.05, 0.1, 0.2, 0.3, 0.02, 0.05, 20), 8.0, 0.3, failures)


def test_the_scope_line_says_which_defect_types_the_held_out_photos_showed_it_catches():
    line = scope_line(report_where({"noise": 0.6, "tilt": 0.35}))
    caught, unreliable = line.split("unreliable on")
    assert "focus blur" in caught and "JPEG blocking" in caught and "noise" not in caught
    assert "noise" in unreliable and "tilt" in unreliable and "focus blur" not in unreliable
    assert line.endswith(NOT_TASTE)

    assert "unreliable" not in scope_line(report_where({}))
    assert "catches no defect type reliably" in scope_line(report_where(dict.fromkeys(DEFECTS, 0.5)))


def test_the_card_names_the_targets_a_model_misses():
    assert "Targets missed" not in measured_line(report_where({}))
    assert "tilt: pairwise accuracy 0.350" in measured_line(report_where({"tilt": 0.35}))
