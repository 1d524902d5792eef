"""What a run trains on: the ``TrainingSource`` contract, and a label file read, cleaned and split into one."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from training.config import ConfigError, TrainConfig
from training.datasets import Augmentation, DataSplit, ScoredImages, clean, load_id_lists, split_items
from training.errors import TrainingError
from training.labels import LabelSet, read_labels

# Below this many validation images, SRCC cannot tell one epoch from the next (its standard error is
# about 1/sqrt(n - 3): 0.38 at 10 images); below 2 it is undefined.
MIN_RANKING_VALIDATION = 10

@dataclass
class DataSets:
    """What one run trains on, picks its best epoch by, and reports at the end (may be empty)."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    test: torch.utils.data.Dataset


class TrainingSource(Protocol):
    """What the trainer needs from its data.

    :class:`TrainingData` (a label file) is one; the built-in model's recipe
    supplies generated defects (``training.recipes``). Datasets yield sample
    dicts for :func:`training.datasets.collate` (or groups of them); the
    validation and test sets also offer ``items`` with ``score`` (and
    ``distribution()`` for vote targets), as ``ScoredImages`` does.
    """

    @property
    def target(self) -> str: ...  # "votes" (10-bin distributions) or "score"

    def datasets(self, config: TrainConfig, image_size: int) -> DataSets: ...

    def summary(self) -> dict: ...  # for summary.json and the card: at least split, sizes, dropped

    def describe(self) -> str: ...  # the card's training_data line

    # Optionally, ``seen_images() -> {"train": paths, "val": paths}``: recorded beside the model so
    # that ``evaluate`` can tell when a label set overlaps them (TrainingData has it).
    # Optionally, ``fingerprint() -> str``: changes whenever the images or labels of a split do, so a
    # run is never resumed on other data than it started on (TrainingData has it).


@dataclass
class TrainingData:
    labels: LabelSet
    split: DataSplit
    dropped: Counter  # images left out before training, by reason

    @property
    def target(self) -> str:
        return self.labels.target

    def datasets(self, config: TrainConfig, image_size: int) -> DataSets:
        if config.crop_from is not None and config.crop_from < image_size:
            raise ConfigError(f"crop_from {config.crop_from} is smaller than the model's input {image_size}")
        augmentation = Augmentation(flip=config.flip, crop_from=config.crop_from)
        return DataSets(
            ScoredImages(self.split.train, self.target, image_size, augmentation, config.seed),
            ScoredImages(self.split.val, self.target, image_size),
            ScoredImages(self.split.test, self.target, image_size),
        )

    def describe(self) -> str:
        return f"{self.labels.format} labels {self.labels.source} ({self.target})"

    def seen_images(self) -> dict[str, list[Path]]:
        return {"train": [item.path for item in self.split.train], "val": [item.path for item in self.split.val]}

    def fingerprint(self) -> str:
        """A digest of every split's image ids and labels."""
        digest = hashlib.sha256()
        for split, items in (("train", self.split.train), ("val", self.split.val), ("test", self.split.test)):
            for item in sorted(items, key=lambda item: item.image_id):
                line = f"{split}\t{item.image_id}\t{item.score!r}\t{item.votes}\n"
                digest.update(line.encode("utf-8", errors="surrogateescape"))
        return digest.hexdigest()

    def summary(self) -> dict:
        return {
            "labels": str(self.labels.source),
            "format": self.labels.format,
            "target": self.labels.target,
            "labelled": len(self.labels),
            "dropped": dict(self.dropped),
            "split": self.split.method,
            "sizes": self.split.sizes(),
            "unassigned": self.split.unassigned,
        }

def prepare_data(config: TrainConfig, progress: bool = True) -> TrainingData:
    """Read, clean and split the labels of ``config``."""
    if not config.data:
        raise ConfigError("no training data: give --data (a label file) and --images (its image folder)")
    labels = read_labels(config.data, config.images, config.label_format)
    cleaned = clean(labels, progress=progress)
    left_out = dict(cleaned.dropped) or "none"
    if not cleaned.items:
        folder = config.images or Path(config.data).parent
        raise TrainingError(
            f"not one of the {len(labels)} labelled images of {config.data} is usable (left out: {left_out}); "
            f"their names are read relative to --images, now {folder}"
        )
    _refuse_equal_labels(cleaned.items)
    train_ids, test_ids = load_id_lists(config.train_ids, config.test_ids)
    split = split_items(cleaned.items, config.seed, train_ids, test_ids, config.val_fraction)
    if not split.train or not split.val:
        raise TrainingError(
            f"too few usable images to train: {split.sizes()} after leaving out {left_out}; at least one each "
            f"to train on and to validate on is needed, {MIN_RANKING_VALIDATION} or more to validate on to "
            "pick the best epoch"
        )
    return TrainingData(labels, split, cleaned.dropped)


def _refuse_equal_labels(items: list) -> None:
    """Labels that are all the same teach nothing but that one score (a rating column of all 5 stars)."""
    if len(items) > 1 and len({(item.score, item.votes) for item in items}) == 1:
        raise TrainingError(
            f"all {len(items)} usable images have the same label (mean score {items[0].score:g}): "
            "there is nothing to learn from; the labels must tell better images from worse"
        )
