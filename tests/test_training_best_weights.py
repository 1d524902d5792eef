"""The weights a run keeps are always those of the epoch its checkpoint names the best, whenever it stops.

A new best epoch's weights are written before its checkpoint, and the checkpoint before they replace the
kept ones; a process that dies between two of these writes (kill -9, a crash) and is resumed must end
with the weights of the epoch the checkpoint names, not those of an epoch the checkpoint never held.
A dying process is stood in for by an exception at the instant it dies: nothing after it runs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import training.resume_state
from eat_curate.model.model_store import ModelStore
from training.config import TrainConfig
from training.resume_state import CheckpointError, load_best_weights
from training.trainer import Trainer, TrainResult, train

# Two validation images are too few to tell epochs apart: which epoch is a new best is set by each test.
pytestmark = pytest.mark.filterwarnings("ignore::training.errors.TrainingWarning")

IMAGES = 12  # 9 to train on, 2 to validate on, 1 to test on


class Killed(Exception):
    """The process dies here."""


@pytest.fixture
def labels(synthetic_set: Path, tmp_path: Path) -> Path:
    with open(synthetic_set / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:IMAGES]
    path = tmp_path / "labels.csv"
    path.write_text("path,score\n" + "".join(f"{row['path']},{float(row['true_score']):.2f}\n" for row in rows))
    return path


def run(labels: Path, images: Path, store: ModelStore, run_dir: Path, resume: bool = False) -> TrainResult:
    """Two epochs of pico, both eligible as the best."""
    config = TrainConfig(data=str(labels), images=str(images), init="pico", name="kept", epochs=2, explore_epochs=0,
                         lr=1e-3, val_fraction=0.2, threads=1, loader_workers=0, checkpoint_dir=str(run_dir),
                         resume=resume)  # fmt: skip
    return train(config, store, progress=False, log=lambda _: None)


def die_at(name: str, call: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies as ``training.resume_state.<name>`` is called for the ``call``-th time (from 1)."""
    original, calls = getattr(training.resume_state, name), []

    def original_or_death(*args, **kwargs):
        calls.append(True)
        if len(calls) == call:
            raise Killed(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(training.resume_state, name, original_or_death)


def kept_weights(store: ModelStore) -> dict[str, torch.Tensor]:
    return store.load("kept").model.state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    shared = a.keys() & b.keys()
    assert shared
    return all(torch.equal(a[key], b[key]) for key in shared)


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)


def test_a_stop_before_a_new_best_epoch_is_checkpointed_keeps_the_checkpoints_best_epoch(
    labels: Path, synthetic_set: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_keeps", lambda self, srcc: True)  # epoch 2 beats epoch 1
        die_at("save_checkpoint", 2, patch)  # epoch 2's best weights are written, its checkpoint never is
        with pytest.raises(Killed):
            run(labels, synthetic_set / "images", pico_store, run_dir)
    stopped = checkpoint(run_dir)
    assert (stopped["epoch"], stopped["best_epoch"]) == (1, 1)
    epoch_1 = stopped["model"]

    # The repeat of epoch 2 comes out worse than it did (other threads, a GPU's nondeterminism): no new best.
    monkeypatch.setattr(Trainer, "_keeps", lambda self, srcc: self.best_epoch == 0)
    result = run(labels, synthetic_set / "images", pico_store, run_dir, resume=True)

    assert result.best_epoch == 1 == result.card.metrics["best_epoch"]
    assert same_weights(kept_weights(pico_store), epoch_1)  # was epoch 2's, from before the stop
    assert not same_weights(kept_weights(pico_store), checkpoint(run_dir)["model"])  # epoch 2's
    assert sorted(path.name for path in run_dir.iterdir()) == ["best.safetensors", "last.pt", "metrics.csv",
                                                               "summary.json"]  # fmt: skip


def test_a_stop_after_a_new_best_epoch_is_checkpointed_keeps_that_epoch(
    labels: Path, synthetic_set: Path, pico_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    monkeypatch.setattr(Trainer, "_keeps", lambda self, srcc: True)
    with monkeypatch.context() as patch:
        die_at("promote_best_weights", 2, patch)  # epoch 2's checkpoint is written, its weights not yet kept
        with pytest.raises(Killed):
            run(labels, synthetic_set / "images", pico_store, run_dir)
    stopped = checkpoint(run_dir)
    assert (stopped["epoch"], stopped["best_epoch"]) == (2, 2)

    result = run(labels, synthetic_set / "images", pico_store, run_dir, resume=True)  # no epoch left to run

    assert result.best_epoch == 2
    assert same_weights(kept_weights(pico_store), stopped["model"])
    assert not (run_dir / "best.next.safetensors").exists()


def test_best_weights_of_another_epoch_than_the_checkpoints_are_refused_and_old_ones_load(tmp_path: Path) -> None:
    weights = {"w": torch.arange(3.0)}
    training.resume_state.stage_best_weights(tmp_path, weights, epoch=3)
    training.resume_state.promote_best_weights(tmp_path)

    assert torch.equal(load_best_weights(tmp_path, 3)["w"], weights["w"])
    with pytest.raises(CheckpointError, match="holds the weights of epoch 3, but the run's checkpoint keeps epoch 2"):
        load_best_weights(tmp_path, 2)

    save_file(weights, str(tmp_path / "best.safetensors"))  # a run's from before weights recorded their epoch
    assert torch.equal(load_best_weights(tmp_path, 2)["w"], weights["w"])
