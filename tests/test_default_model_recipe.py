"""The built-in model recipe's own steps: the photo split, float16 rounding, and its command line."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eat_curate.benchmarks.photos import WALLPAPER_PACKAGES
from eat_curate.errors import EatCurateError
from eat_curate.model import EAT
from eat_curate.model.checkpoint import read_card
from eat_curate.model.model_store import BUILTIN_DIR
from training.degradation_eval import DefectFigures, DefectReport, Stability
from training.degradations import DEFECTS
from training.degraded_data import CurriculumStage
from training.recipes.default_model import Recipe, main, round_to_float16, split_files, split_photos
from training.recipes.model_card import NOT_TASTE, measured_line, scope_line
from training.recipes.wallpaper_photos import KNOWN_PHOTO_PACKAGES, LXQT, PHOTO_PACKAGES, PhotoFile

NAMES = [f"photo{i:02d}" for i in range(23)]


def test_whole_photographs_are_split_disjointly_and_the_same_way_every_time():
    recipe = Recipe()
    splits = split_photos(NAMES, recipe)
    assert (len(splits["val"]), len(splits["test"])) == (recipe.val_photos, recipe.test_photos)
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == NAMES
    assert split_photos(list(reversed(NAMES)), recipe) == splits  # the order they were found in does not matter
    assert split_photos(NAMES, Recipe(split_seed=1)) != splits


def test_photographs_of_train_only_packages_train_and_leave_the_held_out_photographs_as_they_were():
    def photo(name: str, package: str) -> PhotoFile:
        return PhotoFile(name, package, Path(name), 10, 10, "CC0-1.0", "someone")

    files = [photo(name, "mate-backgrounds") for name in NAMES]
    extra = [photo(f"lxqt{i}", LXQT) for i in range(3)]
    without = split_files(files, Recipe())
    with_more = split_files(files + extra, Recipe(train_only_packages=(LXQT,)))
    assert (with_more["val"], with_more["test"]) == (without["val"], without["test"])
    assert with_more["train"] == sorted(without["train"] + ["lxqt0", "lxqt1", "lxqt2"])
    assert split_files(files + extra, Recipe())["train"] == without["train"]  # not asked for: not used
    with pytest.raises(ValueError, match=f"{LXQT} is split already"):
        Recipe(packages=(*PHOTO_PACKAGES, LXQT), train_only_packages=(LXQT,))


def test_too_few_photographs_to_hold_any_out_is_an_error():
    with pytest.raises(EatCurateError, match="too few"):
        split_photos(NAMES[:6], Recipe())


def test_rounded_weights_are_exactly_what_a_float16_file_gives_back(micro_preset):
    model = EAT(micro_preset)
    round_to_float16(model)
    for value in model.state_dict().values():
        if value.is_floating_point():
            assert torch.equal(value, value.to(torch.float16).to(value.dtype))


def test_the_recipe_teaches_focus_first_and_every_defect_type_in_the_end():
    stages = replace(Recipe(), epochs=20).curriculum_stages()
    assert stages[0] == CurriculumStage(0, ("gaussian_blur", "motion_blur"))
    assert [stage.first_epoch for stage in stages] == sorted(stage.first_epoch for stage in stages)
    assert set(stages[-1].defects) == set(DEFECTS) and stages[-1].first_epoch < 20


def test_the_command_explains_itself():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in ("--cache", "--out", "--work", "--device", "--resume", "--epochs", "--lr", "--defects",
                   "--packages", "--test-photos", "--crop-shift", "--defect-weights",
                   "--tilt-same-frame", "--stem-init", "--train-packages", "--seed"):
        assert option in result.output


@pytest.mark.parametrize(
    ("option", "value", "unknown"),
    [
        ("--defects", "gaussian_blur,focus", "focus"),
        ("--packages", "mate-backgrounds,ubuntu-wallpapers", "ubuntu-wallpapers"),
        ("--train-packages", "ubuntu-wallpapers", "ubuntu-wallpapers"),
    ],
)
def test_an_unknown_name_is_refused_before_anything_is_fetched(tmp_path, option, value, unknown):
    result = CliRunner().invoke(main, ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                                       option, value])
    assert result.exit_code == 2
    assert option in result.output and unknown in result.output
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--defect-weights", "tilt"], "not NAME=WEIGHT"),
        (["--defect-weights", "tilt=x"], "not NAME=WEIGHT"),
        (["--defect-weights", "focus=2"], "focus"),
        (["--defect-weights", "tilt=-1"], "positive"),
        (["--defects", "gaussian_blur", "--defect-weights", "tilt=3"], "tilt is not among the defect types trained"),
    ],
)
def test_bad_defect_weights_are_refused_before_anything_is_fetched(tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                                       *arguments])
    assert result.exit_code == 2
    assert "--defect-weights" in result.output and message in " ".join(result.output.split())
    assert not (tmp_path / "cache").exists()


def test_a_package_both_split_and_train_only_is_refused_before_anything_is_fetched(tmp_path):
    result = CliRunner().invoke(main, ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                                       "--packages", f"mate-backgrounds,{LXQT}", "--train-packages", LXQT])
    assert result.exit_code == 2
    assert "--train-packages" in result.output and f"{LXQT} is split already" in result.output
    assert not (tmp_path / "cache").exists()


def test_the_shipped_model_s_recipe_takes_the_photographs_of_every_package_it_was_trained_on():
    assert Recipe().packages == PHOTO_PACKAGES and Recipe().train_only_packages == ()
    assert set(WALLPAPER_PACKAGES) < set(PHOTO_PACKAGES)  # the desktops' and Lomiri's
    assert set(KNOWN_PHOTO_PACKAGES) - set(PHOTO_PACKAGES) == {LXQT}  # found later, for trials


def test_the_built_in_model_was_trained_with_the_recipe_s_current_settings():
    """So the command the README gives remakes the model that ships, not an older recipe's."""
    trained_with = read_card(BUILTIN_DIR / "culling-nano").extra["recipe"]
    settings = json.loads(json.dumps(asdict(Recipe())))  # tuples become lists, as in the card
    assert {key: trained_with.get(key) for key in settings} == settings


def test_the_recipe_keeps_its_last_epoch_rather_than_one_two_validation_photos_picked(tmp_path):
    config = Recipe().train_config(tmp_path, "cpu", "fp32", threads=None, workers=0, resume=False)
    assert config.keep_epoch == "last"


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
