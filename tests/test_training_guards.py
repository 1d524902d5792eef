"""Training and evaluation on data that cannot support what is asked of it: said clearly, never silent.

- A validation split too small to tell epochs apart is warned about, with the ways to fix it.
- An undefined (nan) validation SRCC is reported, and never chosen as the best epoch: a run where
  no epoch has a defined SRCC keeps its last epoch and says so.
- ``evaluate`` on images the model was trained or validated on (recorded beside the model) warns,
  or leaves them out with ``--exclude-training``.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.model.model_store import ModelStore
from eat_curate.model.training_images import TRAINING_IMAGES_FILE, read_training_images
from training.config import ConfigError, TrainConfig
from training.datasets import split_items
from training.evaluation import OverlapWarning, evaluate_model
from training.labels import read_labels
from training.errors import TrainingWarning
from training.trainer import Trainer, train

TINY = 20  # the set: a 90/5/5 split leaves 1 validation image


def write_subset(synthetic_set: Path, labels: Path, rows: slice) -> Path:
    """A label file of some rows of the synthetic set, its images where they are."""
    with open(synthetic_set / "labels.csv", newline="") as handle:
        reader = csv.reader(handle)
        header, *body = list(reader)
    with open(labels, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *body[rows]])
    return labels


def short_run(labels: Path, images: Path, name: str, **settings) -> TrainConfig:
    return TrainConfig(data=str(labels), images=str(images), init="pico", name=name, epochs=3, explore_epochs=1,
                       lr=1e-3, threads=1, loader_workers=0, **settings)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(synthetic_set: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The issue's run, once for the module: 20 images, default split, keep the best epoch."""
    from synthetic_aesthetics import PICO_PRESET

    folder = tmp_path_factory.mktemp("tiny")
    store = ModelStore(folder / "models")
    store.init(PICO_PRESET, "pico", seed=0)
    labels = write_subset(synthetic_set, folder / "tiny.csv", slice(0, TINY))
    with pytest.warns(TrainingWarning) as caught:
        result = train(short_run(labels, synthetic_set / "images", "tiny"), store, progress=False, log=lambda _: None)
    warned = [str(warning.message) for warning in caught if issubclass(warning.category, TrainingWarning)]
    return SimpleNamespace(store=store, labels=labels, result=result, warned=warned, images=synthetic_set / "images")


# --- a validation split too small, and an undefined SRCC -----------------------------------------------


def test_a_one_image_validation_split_is_warned_about_with_the_ways_to_fix_it(tiny_run) -> None:
    assert tiny_run.result.data["sizes"] == {"train": 18, "val": 1, "test": 1}
    (small,) = [message for message in tiny_run.warned if message.startswith("the validation split has")]
    assert small.startswith("the validation split has 1 image, too few to tell epochs apart by SRCC")
    assert "--val-fraction" in small and "split column" in small and "--keep-epoch last" in small


def test_an_undefined_srcc_is_reported_and_the_last_epoch_kept_instead_of_the_first(tiny_run) -> None:
    assert all(math.isnan(epoch.val_srcc) for epoch in tiny_run.result.history)
    assert "validation SRCC is undefined (nan) at epoch 1: only 1 validation image decoded" in " ".join(
        tiny_run.warned
    )
    assert "no epoch had a defined validation SRCC: kept epoch 3, the last one, rather than a best one" in (
        tiny_run.warned
    )
    assert tiny_run.result.best_epoch == 3  # not epoch 2, the first exploit epoch
    assert tiny_run.result.card.extra["kept_by"] == "last epoch; no epoch had a defined validation SRCC"


def test_an_undefined_srcc_never_replaces_a_defined_one() -> None:
    def keeps(best_srcc: float, srcc: float) -> bool:
        trainer = SimpleNamespace(config=SimpleNamespace(keep_epoch="best"), best_srcc=best_srcc, best_epoch=1)
        return Trainer._keeps(trainer, srcc)

    assert not keeps(best_srcc=0.3, srcc=math.nan)
    assert keeps(best_srcc=-math.inf, srcc=math.nan)  # nothing defined yet: the latest epoch is held
    assert keeps(best_srcc=-math.inf, srcc=-0.2)  # any defined SRCC beats none
    assert keeps(best_srcc=0.3, srcc=0.5) and not keeps(best_srcc=0.3, srcc=0.3)  # first on ties


def test_val_fraction_sets_the_share_held_out(tmp_path: Path, synthetic_set: Path) -> None:
    items = read_labels(write_subset(synthetic_set, tmp_path / "tiny.csv", slice(0, TINY)), synthetic_set / "images")
    split = split_items(items.items, seed=0, val_fraction=0.5)
    assert split.sizes() == {"train": 9, "val": 10, "test": 1} and split.method == "seeded 45/50/5 (seed 0)"
    with pytest.raises(ConfigError, match="val_fraction must be between 0 and 1"):
        TrainConfig(val_fraction=1.0)


def test_train_with_a_larger_val_fraction_has_no_small_split_warning(
    tmp_path: Path, synthetic_set: Path, pico_store: ModelStore
) -> None:
    labels = write_subset(synthetic_set, tmp_path / "tiny.csv", slice(0, TINY))
    result = CliRunner().invoke(cli, [
        "train", "--data", str(labels), "--images", str(synthetic_set / "images"), "--init", "pico",
        "--name", "halves", "--epochs", "2", "--explore-epochs", "1", "--lr", "1e-3", "--threads", "1",
        "--loader-workers", "0", "--models-dir", str(pico_store.root), "--no-progress", "--val-fraction", "0.5",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pico_store.card("halves").extra["split_sizes"] == {"train": 9, "val": 10, "test": 1}
    assert "the validation split has" not in result.output


# --- evaluate on what the model has seen ---------------------------------------------------------------


def test_a_trained_model_records_the_images_it_was_trained_and_validated_on(tiny_run) -> None:
    folder = tiny_run.store.resolve("tiny")
    seen = read_training_images(folder)
    assert (len(seen["train"]), len(seen["val"])) == (18, 1)
    assert tiny_run.store.card("tiny").extra["training_images"] == {"file": TRAINING_IMAGES_FILE, "train": 18, "val": 1}


def test_evaluate_on_the_training_labels_warns_how_many_images_the_model_has_seen(tiny_run) -> None:
    loaded = tiny_run.store.load("tiny")
    with pytest.warns(OverlapWarning, match=r"19 of the 20 images were used to train this model "
                                            r"\(18 fitted on, 1 picked its kept epoch\)"):  # fmt: skip
        report = evaluate_model(loaded, tiny_run.labels, tiny_run.images, workers=0, progress=False)
    assert report.to_dict()["training_overlap"] == {"train": 18, "val": 1, "same_label_file": True}
    assert report.metrics.count == 20


def test_evaluate_exclude_training_leaves_the_seen_images_out(tiny_run) -> None:
    loaded = tiny_run.store.load("tiny")
    report = evaluate_model(loaded, tiny_run.labels, tiny_run.images, workers=0, progress=False,
                            exclude_training=True)  # fmt: skip
    assert report.metrics.count == 1 and report.dropped == {"used in training": 19}


def test_evaluate_on_unseen_images_does_not_warn(tiny_run, synthetic_set: Path, tmp_path: Path, recwarn) -> None:
    unseen = write_subset(synthetic_set, tmp_path / "unseen.csv", slice(TINY, 40))
    report = evaluate_model(tiny_run.store.load("tiny"), unseen, tiny_run.images, workers=0, progress=False)
    assert not [w for w in recwarn if issubclass(w.category, OverlapWarning)]
    assert report.to_dict()["training_overlap"] == {"train": 0, "val": 0, "same_label_file": False}


def test_a_model_without_an_image_list_is_still_warned_about_its_own_label_file(tiny_run, tmp_path: Path) -> None:
    older = ModelStore(tmp_path / "models")
    shutil.copytree(tiny_run.store.resolve("tiny"), older.root / "tiny")
    (older.root / "tiny" / TRAINING_IMAGES_FILE).unlink()  # as a model trained before the list was kept
    with pytest.warns(OverlapWarning, match="this is the label file the model was trained from"):
        evaluate_model(older.load("tiny"), tiny_run.labels, tiny_run.images, workers=0, progress=False)


def test_the_evaluate_command_prints_the_warning_and_excludes_on_request(tiny_run) -> None:
    common = ["evaluate", "--model", "tiny", "--data", str(tiny_run.labels), "--images", str(tiny_run.images),
              "--models-dir", str(tiny_run.store.root), "--loader-workers", "0", "--no-progress"]  # fmt: skip
    warned = CliRunner().invoke(cli, common)
    assert warned.exit_code == 0, warned.output
    assert "warning: 19 of the 20 images were used to train this model" in warned.output

    excluded = CliRunner().invoke(cli, [*common, "--exclude-training"])
    assert excluded.exit_code == 0, excluded.output
    assert "1 images, 19 left out" in excluded.output and "left out, used in training: 19" in excluded.output
    assert "warning:" not in excluded.output
