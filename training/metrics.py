"""The paper's evaluation protocol plus a calibration table.

SRCC and PLCC between predicted and true mean scores, binary accuracy at a
threshold (5.0 on the 1-10 scale; TAD66K's 0.5 on score/10 is the same cut),
mean EMD where true vote distributions exist, and calibration: predicted
against true mean score in ten equal-count groups ordered by prediction.
Where the labels take few values (a photographer's 1-5 stars), also what the
model predicted for each label (``by_label``): does it score the 5-star
photos above the 4-star ones, and by how much.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import pearsonr, spearmanr

ACCURACY_THRESHOLD = 5.0


@dataclass
class CalibrationBin:
    decile: int  # 1 = lowest predicted scores
    count: int
    predicted_low: float
    predicted_high: float
    predicted_mean: float
    true_mean: float


@dataclass
class LabelGroup:
    label: float  # the true mean score every image of the group has
    count: int
    predicted_low: float
    predicted_high: float
    predicted_mean: float


BY_LABEL_AT_MOST = 10  # distinct labels that get a per-label table: star ratings, not AVA's vote means


@dataclass
class ScoreMetrics:
    count: int
    srcc: float
    plcc: float
    accuracy: float
    mean_emd: float | None  # None when the labels are single scores
    threshold: float = ACCURACY_THRESHOLD
    calibration: list[CalibrationBin] = field(default_factory=list)
    by_label: list[LabelGroup] = field(default_factory=list)  # empty where the labels take many values

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ScoreMetrics":
        calibration = [CalibrationBin(**row) for row in data.get("calibration", [])]
        by_label = [LabelGroup(**row) for row in data.get("by_label", [])]
        return cls(**{**data, "calibration": calibration, "by_label": by_label})

    def summary(self) -> dict:
        """The headline figures, for a metrics CSV row or a model card."""
        return {
            "count": self.count,
            "srcc": self.srcc,
            "plcc": self.plcc,
            "accuracy": self.accuracy,
            "mean_emd": self.mean_emd,
        }


def _correlation(function, predicted: np.ndarray, true: np.ndarray) -> float:
    # Undefined for fewer than two images or a constant side (an untrained model can be constant).
    if len(predicted) < 2 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return math.nan
    return float(function(predicted, true)[0])


def rank_correlation(predicted: np.ndarray | list[float], true: np.ndarray | list[float]) -> float:
    """Spearman's rank correlation (SRCC); NaN where it is undefined (see ``_correlation``)."""
    return _correlation(spearmanr, np.asarray(predicted), np.asarray(true))


def binary_accuracy(predicted: np.ndarray, true: np.ndarray, threshold: float = ACCURACY_THRESHOLD) -> float:
    """Share of images on the same side of ``threshold``; ``<= threshold`` is the low class, as published."""
    return float(np.mean((predicted > threshold) == (true > threshold)))


def mean_emd(predicted: np.ndarray, true: np.ndarray, r: int = 2) -> float:
    """Mean over images of each image's EMD_r between (N, bins) distributions."""
    difference = np.abs(np.cumsum(predicted, axis=1) - np.cumsum(true, axis=1))
    return float(np.mean(np.mean(difference**r, axis=1) ** (1.0 / r)))


def calibration_by_decile(predicted: np.ndarray, true: np.ndarray, groups: int = 10) -> list[CalibrationBin]:
    """Predicted vs true mean score in ``groups`` equal-count groups ordered by prediction."""
    order = np.argsort(predicted, kind="stable")
    bins = []
    for number, members in enumerate(np.array_split(order, min(groups, len(order))), start=1):
        bins.append(
            CalibrationBin(
                decile=number,
                count=len(members),
                predicted_low=float(predicted[members].min()),
                predicted_high=float(predicted[members].max()),
                predicted_mean=float(predicted[members].mean()),
                true_mean=float(true[members].mean()),
            )
        )
    return bins


def groups_by_label(predicted: np.ndarray, true: np.ndarray, at_most: int = BY_LABEL_AT_MOST) -> list[LabelGroup]:
    """The predictions of each label's images, lowest label first; none when there are more than ``at_most``."""
    labels = np.unique(true)
    if len(labels) > at_most:
        return []
    groups = []
    for label in labels:
        members = predicted[true == label]
        groups.append(LabelGroup(float(label), len(members), float(members.min()), float(members.max()),
                                 float(members.mean())))
    return groups


def score_metrics(
    predicted_mean: np.ndarray,
    true_mean: np.ndarray,
    predicted_distribution: np.ndarray | None = None,
    true_distribution: np.ndarray | None = None,
    threshold: float = ACCURACY_THRESHOLD,
) -> ScoreMetrics:
    predicted_mean = np.asarray(predicted_mean, dtype=np.float64)
    true_mean = np.asarray(true_mean, dtype=np.float64)
    if len(predicted_mean) != len(true_mean) or len(predicted_mean) == 0:
        raise ValueError(
            f"need as many predictions as labels, at least one (got {len(predicted_mean)}, {len(true_mean)})"
        )
    emd = None
    if predicted_distribution is not None and true_distribution is not None:
        emd = mean_emd(np.asarray(predicted_distribution, np.float64), np.asarray(true_distribution, np.float64))
    return ScoreMetrics(
        count=len(predicted_mean),
        srcc=rank_correlation(predicted_mean, true_mean),
        plcc=_correlation(pearsonr, predicted_mean, true_mean),
        accuracy=binary_accuracy(predicted_mean, true_mean, threshold),
        mean_emd=emd,
        threshold=threshold,
        calibration=calibration_by_decile(predicted_mean, true_mean),
        by_label=groups_by_label(predicted_mean, true_mean),
    )
