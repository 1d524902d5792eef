"""The EAT network, its presets, steering rules and weights."""

from eat_curate.model.eat import EAT, DeformablePoints, checkpoint_filter_fn, score_moments
from eat_curate.model.presets import PRESETS, EATPreset, get_preset
from eat_curate.model.steering import (
    NO_STEERING,
    PUBLISHED_RULE,
    SteeringRule,
    SteeringSchedule,
)

__all__ = [
    "EAT",
    "DeformablePoints",
    "EATPreset",
    "NO_STEERING",
    "PRESETS",
    "PUBLISHED_RULE",
    "SteeringRule",
    "SteeringSchedule",
    "checkpoint_filter_fn",
    "get_preset",
    "score_moments",
]
