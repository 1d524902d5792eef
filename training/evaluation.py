"""Run a model over labelled images and score it with the paper's protocol.

Used for validation after every training epoch and by ``eat-curate
evaluate``. Images go through the same decoder and preprocessing as scoring
(squash to S x S, no augmentation); a decode failure drops that image and is
counted.

``evaluate`` checks its images against those the model was trained and
validated on, as its folder records them (``eat_curate.model.training_images``;
for older models, the label file named on the card): metrics measured on
them overstate how the model does on new photos, so the overlap is warned
about and reported, or left out on request (``exclude_training``).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eat_curate.model.checkpoint import LoadedModel
from eat_curate.model.eat import EAT, score_moments
from eat_curate.model.steering import heads_toward_interest
from eat_curate.model.training_images import image_identity, read_training_images
from eat_curate.scoring.predictor import resolve_device
from eat_curate.scoring.preprocess import normalize_batch
from training.datasets import CleanedLabels, ScoredImages, clean, make_loader
from training.labels import LabeledImage, LabelFileError, read_id_list, read_labels, strip_image_suffix
from training.metrics import ScoreMetrics, score_metrics


@dataclass
class Predictions:
    indices: np.ndarray  # (N,) positions in the dataset
    mean: np.ndarray  # (N,) predicted mean scores, 1-10
    distribution: np.ndarray  # (N, 10)
    failures: Counter  # decode error kind -> count
    toward_displacement: float = 0.0  # summed |offset| of sampling offsets heading into the interest quadrant
    total_displacement: float = 0.0  # summed |offset| of all sampling offsets

    @property
    def toward_share(self) -> float | None:
        """Share of the sampling displacement that heads into the interest point's quadrant.

        Weighted by offset length on purpose: steering scales offsets by a
        positive factor, which never changes the direction they head in, so
        a plain count of offsets would not see it.
        """
        return self.toward_displacement / self.total_displacement if self.total_displacement else None

    @staticmethod
    def merge(parts: list["Predictions"]) -> "Predictions":
        failures: Counter = Counter()
        for part in parts:
            failures.update(part.failures)
        return Predictions(
            indices=np.concatenate([p.indices for p in parts]),
            mean=np.concatenate([p.mean for p in parts]),
            distribution=np.concatenate([p.distribution for p in parts]),
            failures=failures,
            toward_displacement=sum(p.toward_displacement for p in parts),
            total_displacement=sum(p.total_displacement for p in parts),
        )


def _displacements(points) -> tuple[float, float]:
    toward, total = 0.0, 0.0
    for block in points:
        offset = (block.positions - block.interest).float()
        length = offset.norm(dim=-1)
        toward += float(length[heads_toward_interest(offset, block.interest)].sum())
        total += float(length.sum())
    return toward, total


@torch.inference_mode()
def predict(
    model: EAT,
    dataset: ScoredImages,
    order: list[int],
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 32,
    workers: int = 0,
    progress: bool = False,
    description: str = "evaluating",
) -> Predictions:
    """Predictions for ``dataset[i] for i in order``, with the model as it is (its steering rule included)."""
    was_training = model.training
    model.eval()
    indices, means, distributions = [], [], []
    failures: Counter = Counter()
    toward, total = 0.0, 0.0
    loader = make_loader(dataset, order, batch_size, workers, seed=0)
    for batch in tqdm(loader, desc=description, unit="batch", disable=not progress, leave=False):
        failures.update(batch.failures)
        if not len(batch):
            continue
        images = normalize_batch(batch.pixels, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, points = model.forward_with_points(images)
        distribution = model.distribution(logits)
        mean, _ = score_moments(distribution)
        block_toward, block_total = _displacements(points)
        toward, total = toward + block_toward, total + block_total
        indices.append(batch.indices.numpy())
        means.append(mean.cpu().numpy())
        distributions.append(distribution.cpu().numpy())
    model.train(was_training)
    if not indices:
        empty = np.zeros(0, dtype=np.float32)
        return Predictions(np.zeros(0, dtype=np.int64), empty, np.zeros((0, 10), np.float32), failures)
    return Predictions(
        np.concatenate(indices), np.concatenate(means), np.concatenate(distributions), failures, toward, total
    )


def metrics_of(predictions: Predictions, dataset: ScoredImages) -> ScoreMetrics:
    """The paper's metrics for ``predictions`` against the dataset's labels."""
    items = [dataset.items[i] for i in predictions.indices]
    true_mean = np.array([item.score for item in items])
    true_distribution = None
    if dataset.target == "votes":
        true_distribution = np.stack([item.distribution() for item in items])
    return score_metrics(
        predictions.mean,
        true_mean,
        predictions.distribution if true_distribution is not None else None,
        true_distribution,
    )


class OverlapWarning(UserWarning):
    """An evaluation set holds images the model was trained or validated on."""


USED_IN_TRAINING = "used in training"  # the reason excluded images are counted under


@dataclass
class TrainingOverlap:
    """How an evaluation set meets the model's own training data."""

    train: int | None  # images the model was fitted on (None: unknown, only the label file is known)
    val: int | None  # images that picked its kept epoch
    same_label_file: bool  # the evaluation reads the label file the model was trained from

    @property
    def count(self) -> int:
        return (self.train or 0) + (self.val or 0)

    @property
    def found(self) -> bool:
        return self.count > 0 or (self.train is None and self.same_label_file)

    def to_dict(self) -> dict:
        return {"train": self.train, "val": self.val, "same_label_file": self.same_label_file}


@dataclass
class EvaluationReport:
    model_id: str
    labels: str
    format: str
    labelled: int
    dropped: dict  # left out before predicting, by reason
    failures: dict  # failed to decode while predicting, by kind
    metrics: ScoreMetrics
    training_overlap: TrainingOverlap | None = None  # None: the model records no training data

    def to_dict(self) -> dict:
        return {
            "model_id": self.model_id,
            "labels": self.labels,
            "format": self.format,
            "labelled": self.labelled,
            "dropped": self.dropped,
            "decode_failures": self.failures,
            "training_overlap": self.training_overlap.to_dict() if self.training_overlap else None,
            **self.metrics.to_dict(),
        }


def training_overlap(loaded: LoadedModel, items: list[LabeledImage], data: Path | str) -> TrainingOverlap | None:
    """Which of ``items`` the model saw in training, from its recorded image list or, for a model
    without one, from the label file its card names; None when it records neither."""
    trained_from = (loaded.card.extra.get("config") or {}).get("data")
    same_file = bool(trained_from) and _same_file(trained_from, data)
    seen = read_training_images(loaded.path) if loaded.path is not None else None
    if seen is None:
        return TrainingOverlap(None, None, same_file) if trained_from else None
    identities = [image_identity(item.path) for item in items]
    return TrainingOverlap(
        train=sum(identity in seen["train"] for identity in identities),
        val=sum(identity in seen["val"] for identity in identities),
        same_label_file=same_file,
    )


def _same_file(first: Path | str, second: Path | str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # the training data is gone, or elsewhere: not the same file
        return False


def _warn_about(overlap: TrainingOverlap, total: int) -> None:
    if overlap.train is None:
        seen = "this is the label file the model was trained from (its folder lists no training images)"
    else:
        seen = (
            f"{overlap.count} of the {total} images were used to train this model "
            f"({overlap.train} fitted on, {overlap.val} picked its kept epoch)"
        )
    warnings.warn(
        f"{seen}: these metrics overstate how it does on new photos. Evaluate on images it has not seen "
        "(its test split, e.g. --ids with the test ids), or pass --exclude-training to leave them out",
        OverlapWarning,
        stacklevel=3,
    )


def evaluate_model(
    loaded: LoadedModel,
    data: Path | str,
    images: Path | str | None = None,
    label_format: str = "auto",
    ids: Path | str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
    exclude_training: bool = False,
) -> EvaluationReport:
    """The paper's metrics of a stored model on a label file (optionally only the images in an id list).

    Images the model was trained or validated on are warned about, or left out with ``exclude_training``.
    """
    labels = read_labels(data, images, label_format)
    if ids is not None:
        wanted = read_id_list(ids)
        labels.items = [item for item in labels.items if strip_image_suffix(item.image_id) in wanted]
        if not labels.items:
            raise LabelFileError(f"no image of {data} is in the id list {ids}")
    cleaned = clean(labels, progress=progress)
    if not cleaned.items:
        raise LabelFileError(f"no usable image in {data}: {dict(cleaned.dropped)}")
    overlap = training_overlap(loaded, cleaned.items, data)
    if exclude_training:
        _leave_out_training_images(loaded, cleaned, data)
    elif overlap is not None and overlap.found:
        _warn_about(overlap, len(cleaned.items))
    torch_device = resolve_device(device)
    model = loaded.model.to(torch_device)
    dataset = ScoredImages(cleaned.items, labels.target, loaded.card.input_size)
    predictions = predict(
        model, dataset, list(range(len(dataset))), torch_device, precision, batch_size, workers, progress
    )
    if len(predictions.mean) == 0:
        raise LabelFileError(f"none of the {len(dataset)} images of {data} could be decoded")
    return EvaluationReport(
        model_id=loaded.card.model_id,
        labels=str(data),
        format=labels.format,
        labelled=len(labels.items),
        dropped=dict(cleaned.dropped),
        failures=dict(predictions.failures),
        metrics=metrics_of(predictions, dataset),
        training_overlap=overlap,
    )


def _leave_out_training_images(loaded: LoadedModel, cleaned: CleanedLabels, data: Path | str) -> None:
    """Drop from ``cleaned`` the images the model's folder lists as trained or validated on."""
    seen = read_training_images(loaded.path) if loaded.path is not None else None
    if seen is None:
        raise LabelFileError(
            f"--exclude-training: model {loaded.card.model_id} records no training images "
            "(it was not trained by eat-curate train, or before they were recorded)"
        )
    known = seen["train"] | seen["val"]
    kept = [item for item in cleaned.items if image_identity(item.path) not in known]
    if len(kept) < len(cleaned.items):
        cleaned.dropped[USED_IN_TRAINING] += len(cleaned.items) - len(kept)
    if not kept:
        raise LabelFileError(f"every usable image of {data} was used to train {loaded.card.model_id}")
    cleaned.items = kept
